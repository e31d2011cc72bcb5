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
MAX_PARALLEL = 256  # jobs at once in one run

# Templates, per rendered value.
MAX_TEMPLATE_OUTPUT = 16 * 1024 * 1024  # characters written by one rendering, and of any one string
MAX_TEMPLATE_ITEMS = 1_000_000  # items of any one list or tuple a template builds
MAX_TEMPLATE_LOOP_ITERATIONS = 1_000_000  # iterations of all loops of one rendering
MAX_TEMPLATE_WIDTH = 1_000_000  # a width, count or repetition given to formatting or a filter
MAX_TEMPLATE_INTEGER_BITS = 16_384  # integers a template computes with * and ** (about 4,900 digits)

# Archive extraction (defaults of archive_extract's max_total_bytes and max_ratio).
ARCHIVE_MAX_TOTAL_BYTES = 10 * 1024**3  # all entries of one archive together, uncompressed
ARCHIVE_MAX_RATIO = 200  # uncompressed bytes per byte of archive ...
ARCHIVE_RATIO_FLOOR = 16 * 1024**2  # ... once more than this has been written
