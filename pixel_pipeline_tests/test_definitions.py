"""The code locations load the way the CLI and the UI load them, not only through a Python import."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import dagster as dg

REPO_ROOT = Path(__file__).resolve().parents[1]


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
    assert len(specs) >= 17
    for spec in specs:
        assert spec.group_name and spec.group_name != "default", spec.key
        assert spec.owners, spec.key
        assert spec.kinds, spec.key
        assert spec.description, spec.key
    checks = list(defs.resolve_asset_graph().asset_check_keys)
    assert checks and all(isinstance(key, dg.AssetCheckKey) for key in checks)
