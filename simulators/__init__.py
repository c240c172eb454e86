"""Simulators of the outside systems connbot talks to, speaking their real wire protocols.

One simulator per system: Asterisk's ARI (`ari`) with its SIP port (`sip`), together a PBX
(`pbx`); a softphone backend's App Management API (`app_api`); Jira's REST API (`jira`); Slack's
Web API (`slack`). Each is a WSGI application (or a socket server) over plain state, built from
the official specs and the design notes, failing the way the real system fails (closed ports
refuse, a dead database makes look-ups slow). The lab (`bot.lab`) serves them on loopback for a
newcomer; the tests serve or mount the same code. Nothing here imports `bot`.
"""
