"""User-facing errors: one line that names the file or key and the fix."""


class MsttError(Exception):
    """An error caused by the user's input; the CLI prints it as one line and exits 2."""


class RecipeError(MsttError):
    """A recipe is malformed: an unknown key, a bad type or an invalid value."""


class RegistryError(MsttError):
    """A component is unknown, registered twice or registered with bad metadata."""


class DataError(MsttError):
    """A dataset cannot be read or holds nothing usable."""
