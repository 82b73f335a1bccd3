from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    pass


metadata = Base.metadata

from crm_profile.accounts import models as _accounts  # noqa: E402,F401  (register tables)
from crm_profile.customers import models  # noqa: E402,F401  (register tables)
