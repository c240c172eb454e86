# Type stubs for the part of huey (which ships none) that bot/state/queue.py uses; mypy reads them
# through `mypy_path` in pyproject.toml. Signatures follow huey 3.5's api.py, consumer.py, storage.py;
# `MYPYPATH=stubs python -m mypy.stubtest huey --ignore-missing-stub`, run outside the repository
# root, checks them against the installed huey.
from huey.api import Huey as Huey
