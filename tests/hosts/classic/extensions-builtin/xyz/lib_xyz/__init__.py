"""Fake of Forge Classic@1f95d717 ``extensions-builtin/xyz/lib_xyz``: the X/Y/Z plot's library."""
