"""Configuration: TOML file, STACKWATCH_* environment overrides, secrets from files."""

from pathlib import Path

import pytest

from agent.config import ConfigError, load_settings
from agent.redact import redact


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def test_region_gives_the_default_base_urls(tmp_path):
    settings = load_settings(write(tmp_path, '[contentstack]\nregion = "azure-eu"\n'))
    assert settings.contentstack.analytics_url == "https://azure-eu-app.contentstack.com"
    assert (
        settings.contentstack.automations_url == "https://azure-eu-automations-api.contentstack.com"
    )


def test_base_url_overrides_win_over_the_region(tmp_path):
    path = write(
        tmp_path,
        '[contentstack]\nregion = "aws-eu"\nanalytics_base_url = "http://127.0.0.1:9/"\n',
    )
    settings = load_settings(path)
    assert settings.contentstack.analytics_url == "http://127.0.0.1:9"
    assert settings.contentstack.automations_url == (
        "https://eu-prod-automations-api.contentstack.com"
    )


def test_environment_overrides_the_file_with_double_underscore_nesting(tmp_path, monkeypatch):
    path = write(tmp_path, '[contentstack]\norganization_uid = "from-file"\n')
    monkeypatch.setenv("STACKWATCH_CONTENTSTACK__ORGANIZATION_UID", "from-env")
    monkeypatch.setenv("STACKWATCH_CONTENTSTACK__AUTHTOKEN", "blt-env-token")
    monkeypatch.setenv("STACKWATCH_AGENT__DEFAULT_INTERVAL", "30s")
    settings = load_settings(path)
    assert settings.contentstack.organization_uid == "from-env"
    assert settings.contentstack.authtoken.get_secret_value() == "blt-env-token"
    assert settings.agent.default_interval.total_seconds() == 30


def test_authtoken_from_a_file_is_read_and_registered_as_a_secret(tmp_path):
    secret = tmp_path / "authtoken"
    secret.write_text("blt-file-token-987\n")
    path = write(tmp_path, f'[contentstack]\nauthtoken_file = "{secret}"\n')
    settings = load_settings(path)
    assert settings.contentstack.authtoken.get_secret_value() == "blt-file-token-987"
    assert "blt-file-token-987" not in redact("token blt-file-token-987 leaked")


def test_oauth_secret_file_and_missing_secret(tmp_path):
    secret = tmp_path / "oauth"
    secret.write_text("s3cr3t-oauth")
    ok = load_settings(
        write(
            tmp_path,
            f'[contentstack]\noauth_client_id = "id"\noauth_client_secret_file = "{secret}"\n',
        )
    )
    assert ok.contentstack.uses_oauth
    with pytest.raises(ConfigError, match="oauth_client_secret is missing"):
        load_settings(write(tmp_path, '[contentstack]\noauth_client_id = "id"\n'))


def test_relative_paths_are_relative_to_the_config_file(tmp_path):
    settings = load_settings(write(tmp_path, '[agent]\nrule_paths = ["my-rules"]\n'))
    assert settings.agent.rule_paths == [tmp_path / "my-rules"]
    assert settings.agent.state_path == tmp_path / "stackwatch.db"


@pytest.mark.parametrize(
    "text,expected",
    [
        (
            '[contentstack]\nregion = "mars"\n',
            "config.toml:2: contentstack.region: Input should be",
        ),
        ("[contentstack]\n\nbogus = 1\n", "config.toml:3: contentstack.bogus: unknown key"),
        (
            '[contentstack]\n[agent]\ndefault_interval = "soon"\n',
            "config.toml:3: agent.default_interval: invalid duration 'soon'",
        ),
        ("[contentstack\n", "config.toml:1: toml: "),
        (
            '[contentstack]\nauthtoken_file = "/nonexistent/token"\n',
            "config.toml:1: contentstack: cannot read authtoken file",
        ),
        ("[contentstack]\nrate_limit = 50\n", "config.toml:2: contentstack.rate_limit:"),
    ],
)
def test_problems_are_file_line_field_message(tmp_path, text, expected):
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, text))
    assert any(expected in problem for problem in caught.value.problems), caught.value.problems


def test_a_problem_from_the_environment_names_the_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("STACKWATCH_CONTENTSTACK__REGION", "mars")
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, '[contentstack]\nregion = "aws-eu"\n'))
    (problem,) = caught.value.problems
    assert problem.startswith("environment STACKWATCH_CONTENTSTACK__REGION: contentstack.region:")


def test_a_secret_never_appears_in_a_config_error(tmp_path):
    path = write(tmp_path, '[contentstack]\nauthtoken = "blt-very-secret-1"\nregion = "x"\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert "blt-very-secret-1" not in str(caught.value)


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ('[contentstack]\nauthtoken = "bl\u00f6t-secret-2"\n', "authtoken"),
        ('[contentstack]\nauthtoken = "blt secret 2"\n', "authtoken"),
        ('[contentstack]\norganization_uid = "org\\n2"\n', "organization_uid"),
        (
            '[[remediate.actions]]\nname = "a"\nkind = "trigger"\ntrigger = "t"\n'
            'http_key = "key\\r\\nx-evil: 1"\n',
            "http_key",
        ),
    ],
)
def test_a_credential_no_header_can_carry_is_a_config_error(tmp_path, text, field):
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, text))
    (problem,) = caught.value.problems
    assert f"{field} must be visible ASCII characters without spaces" in problem
    assert "secret" not in problem and "evil" not in problem  # the value is never shown


def test_missing_file_is_fine_unless_named(tmp_path):
    assert load_settings(tmp_path / "absent.toml").contentstack.region == "aws-na"
    with pytest.raises(ConfigError, match="config file not found"):
        load_settings(tmp_path / "absent.toml", required=True)


def test_secret_file_paths_expand_variables_and_are_relative_to_the_config(tmp_path, monkeypatch):
    credentials = tmp_path / "creds"
    credentials.mkdir()
    (credentials / "authtoken").write_text("blt-from-credentials-dir")
    (tmp_path / "api-token").write_text("api-token-relative")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(credentials))
    monkeypatch.chdir("/")
    path = write(
        tmp_path,
        '[contentstack]\nauthtoken_file = "${CREDENTIALS_DIRECTORY}/authtoken"\n'
        '[agent]\napi_token_file = "api-token"\n',
    )
    settings = load_settings(path)
    assert settings.contentstack.authtoken.get_secret_value() == "blt-from-credentials-dir"
    assert settings.agent.api_token.get_secret_value() == "api-token-relative"


def test_unset_variable_in_a_secret_path_is_named(tmp_path, monkeypatch):
    monkeypatch.delenv("NOT_SET_ANYWHERE", raising=False)
    path = write(tmp_path, '[contentstack]\nauthtoken_file = "${NOT_SET_ANYWHERE}/token"\n')
    with pytest.raises(ConfigError, match="names an environment variable that is not set"):
        load_settings(path)


def test_an_invalid_apprise_url_is_a_config_error_naming_only_its_position(tmp_path, capsys):
    from agent.cli import main

    path = write(
        tmp_path,
        '[notify]\n[[notify.channels]]\nname = "mail"\n'
        'urls = ["console://", "nosuchscheme://user:hunter2pass@host"]\n',
    )
    assert main(["notify-test", "mail", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "channel 'mail': URL #2 (nosuchscheme://…) is not a valid Apprise URL" in err
    assert "hunter2pass" not in err and "Traceback" not in err


def test_check_judges_channel_urls_with_apprise(tmp_path, capsys):
    from agent.cli import main

    path = write(
        tmp_path,
        '[notify]\n[[notify.channels]]\nname = "mail"\n'
        'urls = ["console://", "nosuchscheme://user:hunter2pass@host"]\n',
    )
    (tmp_path / "rules").mkdir(exist_ok=True)
    assert main(["check", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "channel 'mail': URL #2 (nosuchscheme://…) is not a valid Apprise URL" in err
    assert "hunter2pass" not in err and "Traceback" not in err


def test_a_channel_url_without_a_scheme_is_refused_when_the_settings_load(tmp_path):
    path = write(tmp_path, '[notify]\n[[notify.channels]]\nname = "mail"\nurls = ["hunter2pass"]\n')
    with pytest.raises(ConfigError, match=r"channel 'mail': URL #1 is not SCHEME://…") as error:
        load_settings(path)
    assert "hunter2pass" not in str(error.value)
