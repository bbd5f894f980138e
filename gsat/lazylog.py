"""`log = lazylog.get(__name__)` for modules on the command-line tools'
path: the logging package (several milliseconds to import) is loaded only
when such a module really logs, which the tools' common path never does."""


class LazyLogger:
    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name

    def __getattr__(self, attr):
        import logging
        return getattr(logging.getLogger(self.name), attr)


def get(name: str) -> LazyLogger:
    return LazyLogger(name)
