"""The examples in docs/*.md are executed: every `$ ` line of a ```sh block runs against a real
server (localhost:8080 replaced by the test server's address), and the block that follows it is
the expected output, where `<…>` matches anything. JSON outputs must match whole; text outputs
must start the output (streams go on)."""

import pathlib
import re
import subprocess
import unittest

from harness import Server

DOCS = pathlib.Path(__file__).resolve().parent.parent.parent / "docs"
FENCE = re.compile(r"```(\w*)\n(.*?)```", re.S)


def examples(path):
    """[(command, kind, expected)] in document order."""
    blocks = [(m.group(1), m.group(2)) for m in FENCE.finditer(path.read_text())]
    out = []
    for i, (lang, body) in enumerate(blocks):
        if lang != "sh" or not body.startswith("$ "):
            continue
        commands = [line[2:] for line in body.splitlines() if line.startswith("$ ")]
        assert len(commands) == 1, f"{path.name}: one command per block: {body!r}"
        assert i + 1 < len(blocks), f"{path.name}: no expected output after {commands[0]!r}"
        kind, expected = blocks[i + 1]
        out.append((commands[0], kind, expected.strip()))
    return out


def pattern(expected):
    parts = [re.escape(p) for p in expected.split("<…>")]
    return ".*?".join(parts)


class DocExamples(unittest.TestCase):
    def test_api_examples(self):
        docs = [p for p in sorted(DOCS.glob("*.md")) if examples(p)]
        self.assertTrue(docs, "no executable examples found")
        with Server(shards=2) as srv:
            for doc in docs:
                for command, kind, expected in examples(doc):
                    with self.subTest(doc=doc.name, command=command):
                        cmd = command.replace("localhost:8080", f"127.0.0.1:{srv.port}")
                        out = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True,
                                             timeout=30).stdout.strip()
                        if kind == "json":
                            self.assertRegex(out, "^" + pattern(expected) + "$")
                        else:
                            self.assertRegex(out, "^" + pattern(expected))


if __name__ == "__main__":
    unittest.main()
