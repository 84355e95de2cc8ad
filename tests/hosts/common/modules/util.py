"""Fake of ``modules/util.py`` (A1111 v1.10.1@82a973c; Forge@dfdcbab adds unrelated helpers): ``walk_files`` and
``MassFileLister``, the Extra Networks pages' cache of folder listings: a folder is listed once,
and a file that appears later stays unknown until ``reset()`` or ``update_file_entry``."""

import os
import re


def natural_sort_key(s, regex=re.compile("([0-9]+)")):
    return [int(text) if text.isdigit() else text.lower() for text in regex.split(s)]


def walk_files(path, allowed_extensions=None):
    if not os.path.exists(path):
        return
    allowed = set(allowed_extensions) if allowed_extensions is not None else None
    for root, _, files in sorted(os.walk(path, followlinks=True), key=lambda x: natural_sort_key(x[0])):
        for filename in sorted(files, key=natural_sort_key):
            if allowed is not None and os.path.splitext(filename)[1].lower() not in allowed:
                continue
            if "/." in root:
                continue
            yield os.path.join(root, filename)


class MassFileListerCachedDir:
    def __init__(self, dirname):
        self.dirname = dirname
        try:
            entries = [(e.name, e.stat(follow_symlinks=False)) for e in os.scandir(dirname)]
        except FileNotFoundError:
            entries = []
        files = [(n, s.st_mtime, s.st_ctime) for n, s in entries]
        self.files = {x[0].lower(): x for x in files}
        self.files_cased = {x[0]: x for x in files}

    def update_entry(self, filename):
        try:
            stat = os.stat(os.path.join(self.dirname, filename))
        except FileNotFoundError:
            return
        entry = (filename, stat.st_mtime, stat.st_ctime)
        self.files[filename.lower()] = entry
        self.files_cased[filename] = entry


class MassFileLister:
    def __init__(self):
        self.cached_dirs = {}

    def find(self, path):
        dirname, filename = os.path.split(path)
        cached_dir = self.cached_dirs.get(dirname)
        if cached_dir is None:
            cached_dir = self.cached_dirs[dirname] = MassFileListerCachedDir(dirname)
        stats = cached_dir.files_cased.get(filename)
        if stats is not None:
            return stats
        if cached_dir.files.get(filename.lower()) is None:
            return None
        try:
            st = os.stat(path, follow_symlinks=False)
            return filename, st.st_mtime, st.st_ctime
        except Exception:
            return None

    def exists(self, path):
        return self.find(path) is not None

    def mctime(self, path):
        stats = self.find(path)
        return (0, 0) if stats is None else stats[1:3]

    def reset(self):
        self.cached_dirs.clear()

    def update_file_entry(self, path):
        dirname, filename = os.path.split(path)
        if cached_dir := self.cached_dirs.get(dirname):
            cached_dir.update_entry(filename)
