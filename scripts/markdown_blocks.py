"""Generated blocks in Markdown files: rewrite a file atomically, or fail when it is stale.
Shared by profile_table.py and bench_table.py."""
import os
import sys


def rewrite_or_check(path, transform, check, script, stale_hint):
    """Applies transform(text) -> text to the file at `path`. With check, exits naming the
    file when that changes anything; otherwise writes the result through a temporary file
    and a rename, so a reader never sees half a file."""
    with open(path) as f:
        text = f.read()
    new = transform(text)
    if new == text:
        return
    if check:
        sys.exit(f"{script}: {path}: {stale_hint}")
    with open(path + ".tmp", "w") as f:
        f.write(new)
    os.replace(path + ".tmp", path)
