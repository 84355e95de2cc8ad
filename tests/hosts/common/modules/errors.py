"""Fake of ``modules/errors.py`` (A1111 v1.10.1@82a973c = Forge@dfdcbab): the host prints an exception it caught
(a callback, an extra network's activation) and goes on. Here each one is also kept in
``reported`` so that a test sees what the host would only print (``tests/webui/conftest.py`` fails
a test that leaves any unread)."""

import traceback

reported: list[tuple[str, BaseException | None]] = []


def report(message: str, *, exc_info: bool = False) -> None:
    exc = None
    if exc_info:
        import sys

        exc = sys.exc_info()[1]
        traceback.print_exc()
    print(message)
    reported.append((message, exc))


def display(e: Exception, task, *, full_traceback=False):
    print(f"{task or 'error'}: {type(e).__name__}")
    traceback.print_exception(e)
    reported.append((str(task), e))


def display_once(e: Exception, task):
    display(e, task)
