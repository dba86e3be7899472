"""``stackwatch login``, ``logout``, ``doctor`` and ``init``.

``add_arguments(commands, default_config)`` registers them; each parser's ``handler``
returns the exit code. Prompts happen only on a terminal; every value has a flag (or,
for the password, standard input or an environment variable) for scripts.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.collect.errors import ContentstackError
from agent.redact import redact, register_secret
from agent.regions import REGION_HOSTS
from agent.secretfiles import relative_to, resolve
from agent.setup.session import (
    LoginFailed,
    Session,
    TwoFactorRequired,
    UserSessions,
    default_token_path,
    read_token,
    write_private,
)

if TYPE_CHECKING:
    from agent.config import Settings

PASSWORD_ENV = "STACKWATCH_PASSWORD"


def add_arguments(commands: Any, default_config: Path) -> None:
    """Register the sub-commands on an ``add_subparsers()`` object."""

    def command(name: str, helptext: str, handler: Callable[[argparse.Namespace], int]) -> Any:
        parser = commands.add_parser(name, help=helptext)
        parser.add_argument(
            "--config",
            type=Path,
            default=None,
            help=f"TOML config file (default: {default_config}"
            + (")" if name == "init" else " if present)"),
        )
        parser.set_defaults(handler=handler, default_config=default_config)
        return parser

    login = command("login", "log in once and store the authtoken in a private file", cmd_login)
    login.add_argument("--email", help="the user's email (default: asked)")
    login.add_argument(
        "--password-stdin",
        action="store_true",
        help=f"read the password from standard input (else ${PASSWORD_ENV}, else asked)",
    )
    login.add_argument("--tfa-code", help="two-factor code, for accounts with 2FA")
    login.add_argument("--region", choices=sorted(REGION_HOSTS), help="override the config's")
    login.add_argument("--output", type=Path, help="token file (default: see README)")
    login.add_argument(
        "--force", action="store_true", help="log in even if the stored token still works"
    )

    logout = command("logout", "end the stored authtoken's session and delete its file", cmd_logout)
    logout.add_argument("--region", choices=sorted(REGION_HOSTS), help="override the config's")
    logout.add_argument("--output", type=Path, help="token file (default: as login)")

    doctor = command("doctor", "check config, credentials, APIs, channels and state", cmd_doctor)
    doctor.add_argument(
        "--no-send", action="store_true", help="do not send a test message to each channel"
    )

    from agent.setup import starter

    init = command("init", "write a starter config.toml and rules for one organization", cmd_init)
    starter.add_arguments(init)


# -- config -----------------------------------------------------------------------------------


def _config_path(args: argparse.Namespace) -> Path | None:
    """The named config, else the default one if it exists, else None (environment only)."""
    if args.config is not None:
        return Path(args.config)
    default = Path(args.default_config)
    return default if default.exists() else None


def _session_settings(args: argparse.Namespace) -> tuple[Settings, Path]:
    """Settings for login/logout (the token file is not read) and the token file's path."""
    from agent.config import load_settings
    from agent.logs import configure_logging

    path = _config_path(args)
    settings = load_settings(path, required=args.config is not None, read_authtoken_file=False)
    configure_logging("error")  # failures are reported once, as plain messages
    if args.region:
        settings.contentstack.region = args.region
    token_path = args.output
    configured = settings.contentstack.authtoken_file
    if token_path is None and configured is not None:
        with relative_to(path.resolve().parent if path else None):
            token_path = resolve(configured)
    return settings, Path(token_path or default_token_path()).absolute()


# -- login / logout ---------------------------------------------------------------------------


def cmd_login(args: argparse.Namespace) -> int:
    settings, token_path = _session_settings(args)
    try:
        stored = None if args.force else read_token(token_path)
    except OSError as error:
        print(f"error: cannot read {token_path}: {error.strerror}", file=sys.stderr)
        return 1
    with UserSessions(settings.contentstack) as sessions:
        if stored is not None:
            if not settings.contentstack.organization_uid:
                print(
                    f"error: an authtoken is stored in {token_path}, and checking it needs "
                    "contentstack.organization_uid (config or "
                    "STACKWATCH_CONTENTSTACK__ORGANIZATION_UID); or log in anyway with --force",
                    file=sys.stderr,
                )
                return 2
            try:
                works = sessions.token_works(stored)
            except ContentstackError as error:
                print(
                    f"error: cannot check the stored authtoken ({redact(error.message)}); "
                    "not logging in, so no token is used up (--force to log in anyway)",
                    file=sys.stderr,
                )
                return 1
            if works:
                print(
                    f"The authtoken in {token_path} still works: kept it, no new login "
                    "(a user has at most 20 live tokens and each login evicts the oldest; "
                    "--force logs in anyway)."
                )
                _print_config_hint(settings, token_path)
                return 0
            print(
                f"The authtoken in {token_path} no longer works (invalid, or evicted by newer "
                "logins): logging in again.",
                file=sys.stderr,
            )
        try:
            email, password = _ask_credentials(args)
            session = _login(sessions, email, password, args.tfa_code)
        except LoginFailed as error:
            print(f"error: {redact(str(error))}", file=sys.stderr)
            return 1
        try:
            write_private(token_path, session.authtoken)
        except OSError as error:
            # a token nobody can use still counts against the 20: end its session again
            sessions.logout(session.authtoken)
            print(
                f"error: cannot write {token_path} ({error.strerror}); the new session was "
                "ended again (--output FILE writes elsewhere)",
                file=sys.stderr,
            )
            return 1
    print(f"Logged in as {email}; authtoken written to {token_path} (readable by you only).")
    _print_config_hint(settings, token_path, session)
    return 0


def _ask_credentials(args: argparse.Namespace) -> tuple[str, str]:
    email = args.email
    if not email:
        if not _interactive():
            raise LoginFailed("give --email (no terminal to ask on)")
        email = input("Email: ").strip()
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif os.environ.get(PASSWORD_ENV):
        password = os.environ[PASSWORD_ENV]
    elif _interactive():
        password = getpass.getpass("Password: ")
    else:
        raise LoginFailed(f"no password: give --password-stdin or set {PASSWORD_ENV}")
    register_secret(password)
    if not email or not password:
        raise LoginFailed("an email and a password are needed")
    return email, password


def _login(sessions: UserSessions, email: str, password: str, tfa_code: str | None) -> Session:
    try:
        return sessions.login(email, password, tfa_code)
    except TwoFactorRequired as error:
        if tfa_code is not None or not _interactive():
            hint = "" if tfa_code is not None else " (give --tfa-code CODE)"
            raise TwoFactorRequired(f"{error}{hint}") from None
    code = input("Two-factor code: ").strip()
    return sessions.login(email, password, code)


def _interactive() -> bool:
    return sys.stdin.isatty()


def _print_config_hint(
    settings: Settings, token_path: Path, session: Session | None = None
) -> None:
    contentstack = settings.contentstack
    print("In the [contentstack] table of config.toml:")
    print(f'  authtoken_file = "{token_path}"')
    organizations = session.organization_uids if session is not None else ()
    if len(organizations) == 1 and not contentstack.organization_uid:
        print(f'  organization_uid = "{organizations[0]}"')
    elif organizations and not contentstack.organization_uid:
        print(f"  organization_uid = one of {', '.join(organizations)}")


def cmd_logout(args: argparse.Namespace) -> int:
    settings, token_path = _session_settings(args)
    try:
        token = read_token(token_path)
    except OSError as error:
        print(f"error: cannot read {token_path}: {error.strerror}", file=sys.stderr)
        return 1
    if token is None:
        print(f"error: no authtoken in {token_path} (nothing to log out)", file=sys.stderr)
        return 1
    with UserSessions(settings.contentstack) as sessions:
        try:
            ended = sessions.logout(token)
        except ContentstackError as error:
            print(f"error: {redact(error.message)}; kept {token_path}", file=sys.stderr)
            return 1
    try:
        token_path.unlink()
    except OSError as error:
        print(f"error: session ended, but {token_path} stays: {error.strerror}", file=sys.stderr)
        return 1
    if ended:
        print(f"Logged out; deleted {token_path}.")
    else:
        print(f"The authtoken was no longer valid (invalid or evicted); deleted {token_path}.")
    return 0


# -- doctor / init --------------------------------------------------------------------------------


def cmd_doctor(args: argparse.Namespace) -> int:
    from agent.setup.doctor import run_doctor

    return run_doctor(_config_path(args), send=not args.no_send)


def cmd_init(args: argparse.Namespace) -> int:
    from agent.setup.starter import run_init

    return run_init(args, Path(args.config or args.default_config))
