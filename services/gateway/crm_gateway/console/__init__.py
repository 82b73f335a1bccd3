"""The browser console: static HTML + vanilla JS served at /console (no build step, no CDN)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, RedirectResponse

STATIC = Path(__file__).parent / "static"

router = APIRouter(include_in_schema=False)


@router.get("/console")
async def console_index() -> FileResponse:
    return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8", headers={"Cache-Control": "no-cache"})


@router.get("/console/")
async def console_slash() -> RedirectResponse:
    return RedirectResponse("/console")


@router.get("/survey/{complaint_id}")
async def survey_page(complaint_id: str) -> FileResponse:
    """The customer's survey page behind the resolution link (no sign-in; survey.js asks /api/v1/survey with the token)."""
    return FileResponse(STATIC / "survey.html", media_type="text/html; charset=utf-8", headers={"Cache-Control": "no-cache"})


@router.get("/satisfaction-survey/{invitation_id}")
async def satisfaction_survey_page(invitation_id: str) -> FileResponse:
    """A contact's page behind a survey campaign's link (no sign-in; satisfaction-survey.js asks
    /api/v1/satisfaction-survey-links with the token)."""
    return FileResponse(STATIC / "satisfaction-survey.html", media_type="text/html; charset=utf-8", headers={"Cache-Control": "no-cache"})


@router.get("/")
async def root() -> RedirectResponse:
    return RedirectResponse("/console")
