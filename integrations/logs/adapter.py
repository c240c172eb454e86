"""Client-log analysis: classify log lines into root-cause classes.

Lines come from what a person pasted (`facts["client_log"]`) and from the app backend's device
logs when one is configured. The latest failure wins; a success after it (e.g. 401 then 200,
the normal digest exchange) means the log shows no failure now.
"""

from __future__ import annotations

from typing import Any

from integrations import http
from integrations.app import client as app_client
from integrations.app.client import AppClient
from integrations.app.settings import AppSettings
from integrations.base import (
    ActionInput,
    ActionResult,
    Adapter,
    NotConfiguredError,
    PermanentError,
    TransientError,
    action,
    result,
)
from integrations.logs import models as m
from integrations.logs.client import SUCCESS, Signature, classify, load_catalogue
from integrations.logs.settings import LogsSettings
from integrations.settings import Sections
from playbook.facts import WORDS


class LogsAdapter(Adapter):
    name = "logs"

    def __init__(self, catalogue: list[Signature], app: AppClient | None = None, max_evidence: int = 20):
        self.catalogue = catalogue
        self.app = app
        self.max_evidence = max_evidence

    @classmethod
    def configure(cls, sections: Sections) -> LogsAdapter | None:
        """Always configured: the catalogue ships with connbot and a person can paste a log."""
        app = sections(AppSettings)
        return cls.from_settings(sections(LogsSettings), app if app.configured else None)

    @classmethod
    def from_settings(
        cls, settings: LogsSettings, app: AppSettings | None = None, policy: http.RetryPolicy | None = None
    ) -> LogsAdapter:
        return cls(
            load_catalogue(settings.logs_catalogue),
            app_client.from_settings(app, policy) if app else None,
            settings.logs_max_evidence,
        )

    def _app_lines(self, inp: ActionInput) -> tuple[list[str], dict[str, Any]]:
        if self.app is None or not (inp.user or inp.facts.get("device_id")):
            return [], {}
        try:
            device = str(inp.facts.get("device_id") or self.app.find_device(str(inp.user))["device_id"])
            self.app.require(device, "logs", "share its logs")
            lines = [str(e.get("raw") or e.get("message") or "") for e in self.app.logs(device)]
        except (PermanentError, TransientError) as exc:
            return [], {"app_logs_error": str(exc)}
        return lines, {"device_id": device, "app_log_lines": len(lines)}

    @action(m.LogClass)
    def classify(self, inp: ActionInput) -> ActionResult:
        """Classify the client's recent log lines."""
        pasted = inp.facts.get("client_log") or ""
        lines = pasted if isinstance(pasted, list) else str(pasted).splitlines()
        lines = [str(line) for line in lines if str(line).strip()]
        from_app, sources = self._app_lines(inp)
        if not lines and not from_app and "app_log_lines" not in sources:
            raise NotConfiguredError(
                "no client log: none was pasted and no app backend shares the device's logs"
                + (f" ({sources['app_logs_error']})" if sources else "")
            )
        matches = classify(lines + from_app, self.catalogue)
        evidence: dict[str, Any] = {
            "lines_read": len(lines) + len(from_app),
            "pasted_lines": len(lines),
            **sources,
            "matches": [
                {"line": x.line_no, "class": x.cls, "source": x.source, "text": x.line}
                for x in matches[-self.max_evidence :]
            ],
        }
        failures = [x for x in matches if x.cls != SUCCESS]
        if not failures:
            return result(
                m.LogClass.NONE_FOUND,
                f"No known failure signature in {evidence['lines_read']} log lines.",
                **evidence,
            ).found(log_class="none_found")
        last = failures[-1]
        if matches[-1].cls == SUCCESS:
            return result(
                m.LogClass.NONE_FOUND,
                f"The log ends with a successful registration (line {matches[-1].line_no}); what it showed "
                f"before ({WORDS['log_class'][last.cls]}) is over.",
                **evidence,
            ).found(log_class="none_found")
        evidence["class_counts"] = {
            c: sum(1 for x in failures if x.cls == c) for c in dict.fromkeys(x.cls for x in failures)
        }
        return result(
            m.LogClass(last.cls),
            f"The client log shows {WORDS['log_class'][last.cls]}: {last.line[:200]}",
            **evidence,
        ).found(log_class=last.cls)
