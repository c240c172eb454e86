"""A PBX on loopback: one simulated Asterisk's ARI (HTTP) and SIP (UDP) ports, which open and close
as the real process's would.

* `stop()`: Asterisk is not running; its ARI and SIP ports refuse connections.
* `stop_sip_stack()`: res_pjsip is not running; ARI answers (and shows the module "Not Running"),
  the SIP port refuses.
* `asterisk.database_down()`: the realtime database is unreachable (see `simulators.ari`).
* `repair()`: an administrator's fix: Asterisk (re)started with every module and its database, on
  the same ports.
"""

from __future__ import annotations

from simulators import ari
from simulators.serve import HOST, Server
from simulators.sip import SipPort


class Pbx:
    """`asterisk` served on loopback: ARI at `ari_url`, SIP on UDP `sip_port`."""

    def __init__(self, asterisk: ari.Asterisk, sip_status: str | None = "200 OK"):
        self.asterisk = asterisk
        self.ari = Server(ari.create(asterisk))
        self.sip = SipPort(sip_status)

    @property
    def host(self) -> str:
        return HOST

    @property
    def ari_url(self) -> str:
        return self.ari.url

    @property
    def sip_port(self) -> int:
        return self.sip.port

    @property
    def running(self) -> bool:
        return self.ari.running

    def start(self) -> Pbx:
        """Asterisk runs: ARI listens, and so does SIP while res_pjsip runs."""
        self.ari.start()
        self.sip.start()
        if not self.asterisk.sip_stack_running:
            self.sip.stop()
        return self

    def stop(self) -> None:
        """Asterisk stopped: both ports closed (the port numbers are kept for a restart)."""
        if not self.sip.port:
            self.sip.start()  # take a port number to keep
        if not self.ari.port:
            self.ari.start()
        self.sip.stop()
        self.ari.stop()

    def stop_sip_stack(self) -> None:
        """res_pjsip (and what depends on it) not running: ARI still answers, SIP refuses."""
        with self.asterisk.lock:
            self.asterisk.stop_modules(*ari.SIP_STACK)
        if not self.sip.port:
            self.sip.start()
        self.sip.stop()

    def repair(self) -> None:
        """Asterisk restarted by an administrator: every module runs, both ports listen again."""
        with self.asterisk.lock:
            self.asterisk.repair()
        if not self.ari.running:
            self.ari.start()
        if not self.sip.open:
            self.sip.start()

    def __enter__(self) -> Pbx:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
