"""Plain records declared by a FIELDS table: keyword construction with
defaults, equality, repr, as_dict() and replace().

What dataclasses would give, without importing dataclasses (and inspect):
that import alone costs the command-line tools a third of their start-up
budget (SPEC §9).  Records are frozen unless the class says FROZEN = False.
Stdlib only, no imports.
"""


class Record:
    FIELDS: dict = {}   # name -> default (a list or dict default is copied per record)
    FROZEN = True
    __slots__ = ("_values",)

    def __init__(self, **values):
        data = {}
        for name, default in self.FIELDS.items():
            value = values.pop(name, default)
            data[name] = type(value)(value) if isinstance(value, (list, dict)) else value
        if values:
            raise TypeError(f"{type(self).__name__} has no field {sorted(values)[0]!r}")
        object.__setattr__(self, "_values", data)

    def __getattr__(self, name):
        try:
            return object.__getattribute__(self, "_values")[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name, value):
        if self.FROZEN or name not in self.FIELDS:
            raise AttributeError(f"{type(self).__name__}.{name} cannot be set")
        self._values[name] = value

    def __eq__(self, other):
        return type(self) is type(other) and self._values == other._values

    def __hash__(self):
        return hash((type(self), tuple(map(repr, self._values.values()))))

    def __repr__(self):
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self._values.items())})"

    def as_dict(self) -> dict:
        return dict(self._values)

    def replace(self, **changes):
        return type(self)(**{**self._values, **changes})
