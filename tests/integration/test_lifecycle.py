"""Connect, login and disconnect cycles leak nothing: resident memory
returns to its level, and the sanitizer build's LeakSanitizer (run at the
server's exit) finds nothing, which shows as a non-zero exit status."""

import os
import unittest

from harness import Match

MIB = 1024 * 1024


class Lifecycle(unittest.TestCase):
    def test_1000_login_cycles_return_memory(self):
        with Match(name="cycles") as m:
            # Warm up: the allocator and ENet's peer queues reach their
            # steady size on the first cycles.
            m.attack("cycles", "--key", m.key, "--count", "50")
            before = m.rss_bytes()
            r = m.attack("cycles", "--key", m.key, "--count", "1000",
                         timeout=120)
            self.assertEqual(r["cycles"], 1000)
            self.assertEqual(r["failed"], 0)
            growth = m.rss_bytes() - before
            # ASan keeps freed memory in quarantine, so resident memory
            # cannot show leaks there; LeakSanitizer checks at exit instead.
            if os.environ.get("TW_SANITIZED") != "1":
                self.assertLess(growth, 2 * MIB, f"grew {growth} bytes")
            rc, _ = m.stop()
            self.assertEqual(rc, 0)
            self.assertEqual(m.summary_counter("refused", "client left"), 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
