"""The bounds aetherflow puts on the work one input can cause, in one place.

A flow file, a template or an archive comes from a person or a program that may be
careless or hostile; each bound below turns "runs for hours" or "allocates gigabytes"
into a clear error. Every figure here is documented for users (docs/flow.md,
docs/archives.md); change both together.
"""

from __future__ import annotations

# Flow files (YAML).
# All aliases (``*name``) of one file together may add this many nodes ...
MAX_ALIAS_NODES = 100_000
# ... and this many characters of scalar text.
MAX_ALIAS_CHARS = 10_000_000
# Mappings and lists may nest this deep.
MAX_NESTING_DEPTH = 100
# Python refuses to convert longer decimal integers to and from text (sys.int_info).
MAX_INTEGER_DIGITS = 4300

# Time values in a flow, in seconds.
MAX_DELAY_SECONDS = 86_400  # one wait: a retry delay, a lock wait (a day)
MAX_TIMEOUT_SECONDS = 604_800  # a timeout or a lock's lifetime (a week)
MAX_RETRY_BACKOFF = 10.0

# Templates, per rendered value.
MAX_TEMPLATE_OUTPUT = 16 * 1024 * 1024  # characters of one rendered text or string result
MAX_TEMPLATE_ITEMS = 1_000_000  # items of one list built by repetition or concatenation
MAX_TEMPLATE_LOOP_ITERATIONS = 1_000_000  # iterations of all loops of one rendering
MAX_TEMPLATE_POWER_BITS = 4096  # size of the result of ``**`` on integers
