"""The code locations load the way the CLI and the UI load them, not only through a Python import."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg

REPO_ROOT = Path(__file__).resolve().parents[1]
SNAPSHOT = Path(__file__).parent / "snapshots" / "definitions.json"


def test_workspace_code_locations_pass_dagsters_own_validation():
    dagster_cli = Path(sys.executable).with_name("dagster")
    result = subprocess.run(
        [str(dagster_cli), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    for location in ("pixel_pipeline", "pixel_pipeline_incremental"):
        assert f"Validation successful for code location {location}." in output


def test_every_asset_has_a_group_an_owner_a_kind_and_a_description():
    from pixel_pipeline.definitions import defs

    specs = [spec for assets_def in defs.assets for spec in assets_def.specs]
    assert {s.key.to_user_string() for s in specs} == set(json.loads(SNAPSHOT.read_text(encoding="utf-8"))["assets"])
    for spec in specs:
        assert spec.group_name and spec.group_name != "default", spec.key
        assert spec.owners, spec.key
        assert spec.kinds, spec.key
        assert spec.description, spec.key
    checks = list(defs.resolve_asset_graph().asset_check_keys)
    assert checks and all(isinstance(key, dg.AssetCheckKey) for key in checks)


def definitions_snapshot() -> dict:
    """Asset keys with their group and upstream assets, and every check name, of the main code location."""
    from pixel_pipeline.definitions import defs

    graph = defs.resolve_asset_graph()
    assets = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        if not node.is_materializable:
            continue
        assets[key.to_user_string()] = {"group": node.group_name,
                                        "deps": sorted(p.to_user_string() for p in node.parent_keys)}
    checks = sorted(f"{c.asset_key.to_user_string()}:{c.name}" for c in graph.asset_check_keys)
    return {"assets": assets, "checks": checks}


def test_asset_keys_groups_deps_and_check_names_match_the_snapshot():
    """A rename of an asset or a check is a deliberate change: PIXEL_UPDATE_SNAPSHOT=1 rewrites the snapshot, and
    the diff of pixel_pipeline_tests/snapshots/definitions.json shows it in review (the open-platform's test_defs pattern)."""
    current = definitions_snapshot()
    if os.environ.get("PIXEL_UPDATE_SNAPSHOT") == "1":
        SNAPSHOT.write_text(json.dumps(current, indent=1) + "\n", encoding="utf-8")
    assert current == json.loads(SNAPSHOT.read_text(encoding="utf-8"))
