from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    pass


metadata = Base.metadata

from crm_notifications import configuration as _configuration  # noqa: E402,F401
from crm_notifications.delivery import models as _delivery  # noqa: E402,F401
from crm_notifications.directory import models as _directory  # noqa: E402,F401  (register tables)
from crm_notifications.preferences import models as _preferences  # noqa: E402,F401
from crm_notifications.rules import models as _rules  # noqa: E402,F401
from crm_notifications.segments import models as _segments  # noqa: E402,F401
from crm_notifications.templates import models as _templates  # noqa: E402,F401
