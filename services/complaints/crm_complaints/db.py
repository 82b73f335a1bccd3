from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    pass


metadata = Base.metadata

from crm_complaints.complaints import models  # noqa: E402,F401  (register tables)
