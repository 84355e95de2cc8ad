"""Fake of ``modules/call_queue.py`` (A1111 v1.10.1@82a973c and Forge@dfdcbab): ``queue_lock``, the lock every
generation and checkpoint switch holds (the host's ``FIFOLock``, non-reentrant like this one)."""

import threading

queue_lock = threading.Lock()
