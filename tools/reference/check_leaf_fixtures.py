"""CI parity job for the leaf fixtures: regenerate them with live torch/diffusers and compare with the committed ones.

Runs tools/reference/{randn,schedulers,binning,t5_buckets}.py (each writes into test/fixtures/), compares every
regenerated file with the committed version from git (safetensors: same tensor names, dtypes, shapes and bytes;
JSON: same parsed content), then restores the committed files. Exit status 1 on any difference.
The tiny pipeline fixtures have their own check: make_fixtures.py --check.

Run from the repository root: .venv/bin/python tools/reference/check_leaf_fixtures.py
"""
import json
import os
import subprocess
import sys

from safetensors.numpy import load

GENERATORS = {
    "randn.py": ["test/fixtures/randn/randn.safetensors"],
    "schedulers.py": ["test/fixtures/schedulers/schedulers.safetensors"],
    "binning.py": ["test/fixtures/binning/binning.safetensors", "test/fixtures/binning/cases.json"],
    "t5_buckets.py": ["test/fixtures/t5/relative-position-buckets.json"],
}


def committed(path):
    return subprocess.run(["git", "show", f"HEAD:{path}"], check=True, capture_output=True).stdout


def differences(path):
    old, new = committed(path), open(path, "rb").read()
    if path.endswith(".json"):
        return [] if json.loads(old) == json.loads(new) else ["JSON content differs"]
    a, b = load(old), load(new)
    out = [f"tensor {k} only in one version" for k in sorted(set(a) ^ set(b))]
    for k in sorted(set(a) & set(b)):
        if a[k].dtype != b[k].dtype or a[k].shape != b[k].shape or a[k].tobytes() != b[k].tobytes():
            out.append(f"tensor {k} differs ({a[k].dtype}{list(a[k].shape)} vs {b[k].dtype}{list(b[k].shape)})")
    return out


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    failed = False
    try:
        for script, files in GENERATORS.items():
            subprocess.run([sys.executable, os.path.join(here, script)], check=True, stdout=subprocess.DEVNULL)
            for path in files:
                diff = differences(path)
                failed |= bool(diff)
                print(f"{path}: {'matches' if not diff else 'DIFFERS'}")
                for d in diff[:10]:
                    print(f"  {d}")
    finally:
        subprocess.run(["git", "checkout", "--", *[f for fs in GENERATORS.values() for f in fs]], check=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
