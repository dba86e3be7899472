"""The ``stackwatch run`` daemon: scheduler, state store, signals, HTTP API, systemd."""
