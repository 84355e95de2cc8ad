"""Fake of Forge's ``backend`` package (main, commit dfdcbab685e57677014f05a3309b48cc87383167)."""
