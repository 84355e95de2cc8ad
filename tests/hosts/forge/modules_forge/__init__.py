"""Fake of Forge@dfdcbab ``modules_forge`` package: its presence is how an extension tells Forge from A1111
(``importlib.util.find_spec("modules_forge")``)."""
