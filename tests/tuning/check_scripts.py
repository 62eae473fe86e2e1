#!/usr/bin/python3
"""Syntax-checks every script under tuning/ and tests/tuning/.

Python (by .py suffix or a python shebang) is compiled with this interpreter, which
CTest sets to /usr/bin/python3, the interpreter the tools promise to run on; shell
scripts go through `bash -n`. The tools must be executable and name /usr/bin/python3.
"""

import os
import subprocess

from tuning_test_lib import HERE, TUNING, main

TOOLS = ("audit", "irq-affinity")


def scripts():
    for top in (TUNING, HERE):
        for dirpath, dirnames, names in os.walk(top):
            dirnames[:] = [d for d in dirnames if d not in ("fixtures", "__pycache__")]
            for name in sorted(names):
                path = os.path.join(dirpath, name)
                with open(path, "rb") as f:
                    first = f.readline()
                if name.endswith(".py") or (first.startswith(b"#!") and b"python" in first):
                    yield "python", path
                elif name.endswith(".sh") or (first.startswith(b"#!") and b"sh" in first):
                    yield "shell", path


def case_syntax():
    checked = {"python": 0, "shell": 0}
    for kind, path in scripts():
        if kind == "python":
            with open(path, encoding="utf-8") as f:
                try:
                    compile(f.read(), path, "exec")
                except SyntaxError as e:
                    raise AssertionError(f"{path}: {e}") from None
        else:
            proc = subprocess.run(["bash", "-n", path], capture_output=True, text=True,
                                  check=False)
            assert proc.returncode == 0, f"{path}: {proc.stderr}"
        checked[kind] += 1
    assert checked["python"] >= 10, checked
    print(f"compiled {checked['python']} Python files, bash -n on {checked['shell']} scripts")


def case_tools_runnable():
    for name in TOOLS:
        path = os.path.join(TUNING, name)
        assert os.access(path, os.X_OK), f"{path} is not executable"
        with open(path, encoding="utf-8") as f:
            assert f.readline().strip() == "#!/usr/bin/python3", f"{path}: shebang"
        proc = subprocess.run([path, "--help"], capture_output=True, text=True, check=False)
        assert proc.returncode == 0 and "usage:" in proc.stdout, f"{name} --help: {proc.stderr}"


if __name__ == "__main__":
    raise SystemExit(main({"syntax": case_syntax, "tools_runnable": case_tools_runnable}))
