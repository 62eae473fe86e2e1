"""Unit tests of bench/peers/uws.py that need no uWebSockets checkout: the reasons available()
gives, the options, and the interface the compare scripts rely on (runs everywhere, under
CTest as bench.peers.uws_module)."""

import argparse
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import uws  # noqa: E402


def args_for(src):
    return argparse.Namespace(uws_src=src, uws_deflate="off")


def fake_checkout(root, with_usockets):
    os.makedirs(os.path.join(root, "src"))
    open(os.path.join(root, "src", "App.h"), "w").close()
    if with_usockets:
        os.makedirs(os.path.join(root, "uSockets", "src"))
        open(os.path.join(root, "uSockets", "src", "libusockets.h"), "w").close()


class Available(unittest.TestCase):
    def test_no_checkout_given(self):
        why = uws.available(args_for(None))
        self.assertIsNotNone(why)
        self.assertIn("--uws-src", why)
        self.assertIn("RINGCAST_UWS_SRC", why)

    def test_missing_directory(self):
        with tempfile.TemporaryDirectory() as tmp:
            missing = os.path.join(tmp, "nope")
            why = uws.available(args_for(missing))
            self.assertIsNotNone(why)
            self.assertIn(missing, why)
            self.assertIn("no such directory", why)

    def test_not_a_uws_checkout(self):
        with tempfile.TemporaryDirectory() as tmp:
            why = uws.available(args_for(tmp))
            self.assertIsNotNone(why)
            self.assertIn("src/App.h", why)

    def test_missing_usockets(self):
        with tempfile.TemporaryDirectory() as tmp:
            fake_checkout(tmp, with_usockets=False)
            why = uws.available(args_for(tmp))
            self.assertIsNotNone(why)
            self.assertIn("uSockets", why)
            self.assertIn("submodule", why)

    def test_complete_checkout_is_available(self):
        # A checkout's layout is all available() looks at (and the tools): the build itself is
        # tested by uws-smoke where a real checkout exists.
        with tempfile.TemporaryDirectory() as tmp:
            fake_checkout(tmp, with_usockets=True)
            self.assertIsNone(uws.available(args_for(tmp)))

    def test_start_refuses_with_the_reason(self):
        with tempfile.TemporaryDirectory() as tmp:
            with self.assertRaises(RuntimeError) as ctx:
                uws.start(args_for(os.path.join(tmp, "nope")), tmp, "0")
            self.assertIn("no such directory", str(ctx.exception))


class Interface(unittest.TestCase):
    def test_module_attributes(self):
        self.assertEqual(uws.NAME, "uws")
        self.assertEqual(uws.SUPPORTS, {"echo", "fanout-ws", "fanout-sse", "fanout-deflate"})

    def test_options_default_to_the_environment(self):
        old = os.environ.get("RINGCAST_UWS_SRC")
        os.environ["RINGCAST_UWS_SRC"] = "/some/checkout"
        try:
            p = argparse.ArgumentParser()
            uws.add_options(p)
            a = p.parse_args([])
            self.assertEqual(a.uws_src, "/some/checkout")
            self.assertEqual(a.uws_deflate, "off")
            self.assertEqual(p.parse_args(["--uws-src", "/x"]).uws_src, "/x")
            with self.assertRaises(SystemExit):
                p.parse_args(["--uws-deflate", "bogus"])
        finally:
            if old is None:
                del os.environ["RINGCAST_UWS_SRC"]
            else:
                os.environ["RINGCAST_UWS_SRC"] = old


if __name__ == "__main__":
    unittest.main()
