"""Resource namespaces: one class per area of the API, all sharing the client's core."""

from ._courses import Courses
from ._groups import Groups
from ._members import Members
from ._programs import Programs

__all__ = ["Courses", "Groups", "Members", "Programs"]
