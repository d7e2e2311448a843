"""The one exception every loader raises for bad input."""


class DataError(ValueError):
    """A file or folder that cannot be turned into a valid sample.

    The message always starts with the offending path so a user can find it.
    """

    def __init__(self, path, problem):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")
