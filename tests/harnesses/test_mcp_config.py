"""Each adapter wires ozweb's MCP server into its harness's native config: the config parses,
names the server, its URL and the token's environment variable, and never holds the token."""

from __future__ import annotations

import json
import tomllib
from typing import Any

import pytest

from apps.harnesses import InvocationRequest, McpServer, ToolKind, get_adapter, tool_kind

MCP = McpServer(url="http://127.0.0.1:8123/mcp/")
TOKEN = "ozr_secret-token-value-123"
AGENT_ENV = {
    "OZWEB_TOKEN": TOKEN,
    "ANTHROPIC_API_KEY": "sk-ant-secret-key",
    "OPENAI_API_KEY": "sk-openai-secret",
    "GEMINI_API_KEY": "gemini-secret-key",
    "OPENAI_BASE_URL": "http://127.0.0.1:9999/v1",
}
HARNESSES = ["claude", "codex", "gemini", "opencode"]


def build(harness: str, *, mcp: McpServer | None = MCP, home: str | None = "/home/agent"):
    options: dict[str, Any] = {"command": ["true"]} if harness == "command" else {}
    adapter = get_adapter(harness, **options)
    invocation = adapter.build_invocation(
        InvocationRequest(prompt="hi", model="m", env=AGENT_ENV, mcp=mcp, home=home)
    )
    return adapter, invocation


def ozweb_server_of(harness: str, invocation) -> dict[str, Any]:
    """The harness's entry for the `ozweb` server, read back from its native config."""
    match harness:
        case "claude":
            config = json.loads(invocation.home_files[".claude/ozweb-mcp.json"])
            return config["mcpServers"]["ozweb"]
        case "codex":
            config = tomllib.loads(invocation.home_files[".codex/config.toml"])
            return config["mcp_servers"]["ozweb"]
        case "gemini":
            config = json.loads(invocation.home_files[".gemini/settings.json"])
            return config["mcpServers"]["ozweb"]
        case "opencode":
            config = json.loads(invocation.env["OPENCODE_CONFIG_CONTENT"])
            return config["mcp"]["ozweb"]
    raise AssertionError(harness)


def test_claude_gets_an_mcp_config_file_and_the_flag_naming_its_absolute_path():
    _, invocation = build("claude")
    server = ozweb_server_of("claude", invocation)
    assert server == {
        "type": "http",
        "url": "http://127.0.0.1:8123/mcp/",
        "headers": {"Authorization": "Bearer ${OZWEB_TOKEN}"},
    }
    flag = invocation.argv.index("--mcp-config")
    assert invocation.argv[flag + 1] == "/home/agent/.claude/ozweb-mcp.json"
    assert invocation.env["MCP_TOOL_TIMEOUT"] == "900000"  # a blocking delegate fits


def test_claude_without_a_home_path_gets_the_config_inline():
    _, invocation = build("claude", home=None)
    flag = invocation.argv.index("--mcp-config")
    inline = json.loads(invocation.argv[flag + 1])
    assert inline["mcpServers"]["ozweb"]["url"] == MCP.url
    assert invocation.home_files == {}


def test_codex_gets_a_streamable_http_server_with_a_bearer_token_variable():
    _, invocation = build("codex")
    config = tomllib.loads(invocation.home_files[".codex/config.toml"])
    assert config["mcp_servers"] == {
        "ozweb": {
            "url": "http://127.0.0.1:8123/mcp/",
            "bearer_token_env_var": "OZWEB_TOKEN",
            "startup_timeout_sec": 30,
            "tool_timeout_sec": 900,
        }
    }
    # The custom model provider is still there, and still at the top level.
    assert config["model_provider"] == "ozweb"
    assert config["model_providers"]["ozweb"]["base_url"] == "http://127.0.0.1:9999/v1"


def test_gemini_settings_name_the_server_with_httpurl_and_a_variable_header():
    _, invocation = build("gemini")
    settings = json.loads(invocation.home_files[".gemini/settings.json"])
    assert settings["security"]["auth"]["selectedType"] == "gemini-api-key"
    assert settings["mcpServers"]["ozweb"] == {
        "httpUrl": "http://127.0.0.1:8123/mcp/",
        "headers": {"Authorization": "Bearer ${OZWEB_TOKEN}"},
        "timeout": 900_000,
        "trust": True,
    }


def test_opencode_config_has_a_remote_server_with_env_substitution():
    _, invocation = build("opencode")
    config = json.loads(invocation.env["OPENCODE_CONFIG_CONTENT"])
    assert config["mcp"]["ozweb"] == {
        "type": "remote",
        "url": "http://127.0.0.1:8123/mcp/",
        "headers": {"Authorization": "Bearer {env:OZWEB_TOKEN}"},
        "oauth": False,
        "enabled": True,
    }


@pytest.mark.parametrize("harness", HARNESSES)
def test_no_secret_value_is_written_anywhere(harness):
    """Every one of these harnesses expands variables in its config, so neither the token nor
    an API key appears in a home file, in argv or in the environment the adapter adds."""
    _, invocation = build(harness)
    assert ozweb_server_of(harness, invocation)  # there is a config to check
    written = [*invocation.home_files.values(), *invocation.argv, *invocation.env.values()]
    for secret in AGENT_ENV.values():
        if secret.startswith("http"):
            continue
        assert not any(secret in text for text in written), (harness, secret)


@pytest.mark.parametrize("harness", HARNESSES)
def test_without_a_server_no_mcp_config_is_written(harness):
    _, invocation = build(harness, mcp=None)
    text = json.dumps([invocation.home_files, invocation.argv, invocation.env])
    assert "/mcp/" not in text and "--mcp-config" not in invocation.argv
    assert "OZWEB_TOKEN" not in text


def test_another_server_name_and_token_variable_are_honoured():
    other = McpServer(url="http://10.0.0.1/mcp/", name="team", token_env="TEAM_TOKEN")
    _, claude = build("claude", mcp=other)
    server = json.loads(claude.home_files[".claude/ozweb-mcp.json"])["mcpServers"]["team"]
    assert server["headers"] == {"Authorization": "Bearer ${TEAM_TOKEN}"}
    _, codex = build("codex", mcp=other)
    servers = tomllib.loads(codex.home_files[".codex/config.toml"])["mcp_servers"]
    assert servers["team"]["bearer_token_env_var"] == "TEAM_TOKEN"
    _, opencode = build("opencode", mcp=other)
    headers = json.loads(opencode.env["OPENCODE_CONFIG_CONTENT"])["mcp"]["team"]["headers"]
    assert headers == {"Authorization": "Bearer {env:TEAM_TOKEN}"}


def test_the_command_harness_gets_no_mcp_config():
    _, invocation = build("command")
    assert invocation.home_files == {}
    assert not any("mcp" in key.lower() for key in invocation.env)


# -- MCP tool calls are recognised in each harness's naming ------------------------------------


@pytest.mark.parametrize("name", ["mcp__ozweb__send_message", "mcp_ozweb_send_message"])
def test_mcp_tool_names_are_mcp(name):
    assert tool_kind(name) is ToolKind.MCP


def test_opencode_marks_its_servers_tools_as_mcp():
    adapter, _ = build("opencode")
    line = {
        "type": "tool_use",
        "sessionID": "ses_1",
        "part": {
            "tool": "ozweb_send_message",
            "callID": "c1",
            "state": {"status": "completed", "input": {"to": ["helper"]}, "output": "sent"},
        },
    }
    call, result = adapter.parse_line(json.dumps(line))[1:]
    assert call.data["kind"] == "mcp" and call.data["name"] == "ozweb_send_message"
    assert result.data["output"] == "sent"


def test_codex_mcp_items_become_mcp_tool_calls():
    adapter, _ = build("codex")
    item = {
        "id": "item_1",
        "type": "mcpToolCall",
        "server": "ozweb",
        "tool": "post_message",
        "arguments": {"body": "hi"},
        "result": {"content": [{"type": "text", "text": "posted"}]},
        "error": None,
        "status": "completed",
    }
    started = adapter.parse_line(json.dumps({"method": "item/started", "params": {"item": item}}))
    completed = adapter.parse_line(
        json.dumps({"method": "item/completed", "params": {"item": item}})
    )
    assert started[0].data["name"] == "mcp__ozweb__post_message"
    assert started[0].data["kind"] == "mcp"
    assert completed[-1].data["call_id"] == "item_1"
    assert completed[-1].data["output"] == "posted"
