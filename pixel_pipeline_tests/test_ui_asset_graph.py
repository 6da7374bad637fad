"""The UI in a real browser: dagster-webserver on workspace.yaml, its GraphQL API, and the asset graph in Chromium.

Skipped (with the reason) only when Chromium is not installed; scripts/install_chromium.sh installs it.
Set PIXEL_UPDATE_SCREENSHOT=1 to copy the screenshot to docs/asset_graph.png (the README's picture), and
PIXEL_UI_WORKSPACE to serve another workspace file than workspace.yaml.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from pixel_pipeline_tests.conftest import REPO_ROOT

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--window-size=1600,1000",
]
# The asset names of docs/CONTRACTS.md: the graph the UI shows must contain them all.
CONTRACT_ASSETS = {
    "raw_segments", "counseling_conversations", "cot_conversations", "audited_schema", "curated_segments",
    "curated_conversations", "generated_prompts", "deduplicated_pairs", "review_sample", "review_verdicts", "splits",
    "fine_tuning_exports", "lora_stage1_counseling", "lora_stage2_reasoning", "lora_stage3_voice", "expert_adapters",
    "expert_router",
}
ASSET_GRAPH_QUERY = """
{ assetNodes {
    assetKey { path } groupName description kinds isPartitioned
    dependencyKeys { path }
    assetChecksOrError { ... on AssetChecks { checks { name description blocking } } }
} }
"""


def chromium_binary() -> str | None:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    return found or next((c for c in CHROMIUM_CANDIDATES if Path(c).exists()), None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_json(url: str, payload: dict | None = None, timeout: float = 30) -> dict:
    data = json.dumps(payload).encode() if payload is not None else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


def wait_for(predicate, timeout: float, what: str, proc: subprocess.Popen | None = None):
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"{what}: process exited with {proc.returncode}")
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:  # noqa: BLE001 - not up yet
            last_error = exc
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last error: {last_error})")


@pytest.fixture(scope="module")
def webserver(tmp_path_factory):
    """dagster-webserver on a free loopback port, a throw-away DAGSTER_HOME and empty data/output folders."""
    home = tmp_path_factory.mktemp("dagster_home")
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    port = free_port()
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "PIXEL_DATA_DIR": str(tmp_path_factory.mktemp("ui_data")),
        "PIXEL_OUTPUT_DIR": str(tmp_path_factory.mktemp("ui_output")),
        "HF_HUB_OFFLINE": "1",
    }
    log = open(home / "webserver.log", "wb")
    workspace = os.environ.get("PIXEL_UI_WORKSPACE", "workspace.yaml")
    cmd = [str(Path(sys.executable).with_name("dagster-webserver")), "-w", workspace, "-h", "127.0.0.1", "-p", str(port)]
    proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: http_json(f"{base}/server_info", timeout=5), 90, "dagster-webserver to answer", proc)

        def locations_loaded():
            query = "{ locationStatusesOrError { ... on WorkspaceLocationStatusEntries { entries { name loadStatus } } } }"
            entries = http_json(f"{base}/graphql", {"query": query})["data"]["locationStatusesOrError"]["entries"]
            return entries if entries and all(e["loadStatus"] == "LOADED" for e in entries) else None

        entries = wait_for(locations_loaded, 90, "the code locations to load", proc)
        # Mark the community newsletter dialog as seen on this throw-away instance, so it does not cover the graph.
        http_json(f"{base}/graphql", {"query": "mutation { setNuxSeen }"})
        yield base, entries
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def test_graphql_shows_every_contract_asset_with_group_description_kinds_and_described_checks(webserver):
    base, entries = webserver
    assert "pixel_pipeline" in {e["name"] for e in entries}
    response = http_json(f"{base}/graphql", {"query": ASSET_GRAPH_QUERY})
    assert "errors" not in response, response.get("errors")
    nodes = {"/".join(n["assetKey"]["path"]): n for n in response["data"]["assetNodes"]}
    assert CONTRACT_ASSETS <= set(nodes), f"missing from the UI: {sorted(CONTRACT_ASSETS - set(nodes))}"
    for name, node in nodes.items():
        assert node["groupName"] and node["groupName"] != "default", f"{name} has no group"
        assert node["description"] and len(node["description"]) > 20, f"{name} has no description"
        assert node["kinds"], f"{name} has no kinds"
        for check in node["assetChecksOrError"].get("checks", []):
            assert check["description"], f"check {name}.{check['name']} has no description"
    assert ["raw_segments"] in [d["path"] for d in nodes["curated_segments"]["dependencyKeys"]]
    assert not any(nodes[a]["isPartitioned"] for a in CONTRACT_ASSETS), "the main chain must stay unpartitioned"
    if "pixel_pipeline_incremental" in {e["name"] for e in entries}:
        assert nodes["input_file_segments"]["isPartitioned"]


class DevTools:
    """The three Chrome DevTools Protocol calls this test needs, over websocket-client (a dagster-k8s dependency)."""

    def __init__(self, ws_url: str):
        import websocket

        self.ws = websocket.create_connection(ws_url, timeout=60, suppress_origin=True)
        self.next_id = 0

    def call(self, method: str, **params):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})

    def evaluate(self, expression: str):
        return self.call("Runtime.evaluate", expression=expression, returnByValue=True)["result"].get("value")

    def close(self):
        self.ws.close()


def test_asset_graph_page_renders_in_headless_chromium(webserver, tmp_path):
    chromium = chromium_binary()
    if chromium is None:
        pytest.skip("Chromium is not installed (Debian package `chromium`; run scripts/install_chromium.sh)")
    base, _ = webserver
    port = free_port()
    profile = tempfile.mkdtemp(prefix="pixel-chromium-")
    browser = subprocess.Popen(
        [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--remote-debugging-port={port}", "about:blank"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        targets = wait_for(lambda: http_json(f"http://127.0.0.1:{port}/json/list", timeout=5), 60, "Chromium DevTools", browser)
        page = next(t for t in targets if t.get("type") == "page")
        tools = DevTools(page["webSocketDebuggerUrl"])
        try:
            tools.call("Page.enable")
            tools.call("Page.navigate", url=f"{base}/asset-groups")
            wait_for(lambda: tools.evaluate("document.body && document.body.innerText.includes('ingestion')"), 90, "the asset graph to render")
            # Alt+E expands every group, so the picture shows the assets and their edges, not only the groups.
            for kind in ("keyDown", "keyUp"):
                tools.call("Input.dispatchKeyEvent", type=kind, modifiers=1, key="e", code="KeyE", windowsVirtualKeyCode=69)
            wait_for(lambda: tools.evaluate("document.body.innerText.includes('raw_segments')"), 60, "the groups to expand")
            time.sleep(2)  # let the layout settle and the edges draw
            text = tools.evaluate("document.body.innerText")
            png = base64.b64decode(tools.call("Page.captureScreenshot", format="png")["data"])
        finally:
            tools.close()
    finally:
        browser.terminate()
        try:
            browser.wait(timeout=20)
        except subprocess.TimeoutExpired:
            browser.kill()
        shutil.rmtree(profile, ignore_errors=True)
    for expected in ("ingestion", "curation", "training", "raw_segments"):
        assert expected in text, f"{expected!r} not on the asset graph page"
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000, "the screenshot is not a rendered page"
    shot = tmp_path / "asset_graph.png"
    shot.write_bytes(png)
    if os.environ.get("PIXEL_UPDATE_SCREENSHOT") == "1":
        shutil.copyfile(shot, REPO_ROOT / "docs" / "asset_graph.png")
