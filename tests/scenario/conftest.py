from tests.fakes.slack_api import make_slack, slack_api  # noqa: F401  (fixtures)
