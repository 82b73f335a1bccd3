from fastapi import APIRouter, Request

from crm_common.runtime import runtime_of
from crm_profile.customers import service
from crm_profile.customers.schemas import CustomerCreate, CustomerOut

router = APIRouter(prefix="/customers", tags=["customers"])


@router.post("", status_code=201, response_model=CustomerOut)
async def create_customer(data: CustomerCreate, request: Request):
    async with runtime_of(request).transaction() as session:
        customer = await service.create_customer(session, data)
        return CustomerOut.model_validate(customer)


@router.get("/{customer_id}", response_model=CustomerOut)
async def get_customer(customer_id: str, request: Request):
    async with runtime_of(request).db.sessions() as session:
        return CustomerOut.model_validate(await service.get_customer(session, customer_id))
