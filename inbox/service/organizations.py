"""Organisation writes of `InboxService`: companies with their email domains, and contacts added by hand.

Organisations are reference data like teams: they change without events of their own (no client shows them
live yet). Domains are normalised (lower-case, no "@") and belong to one organisation only, so a contact's
organisation by domain is never ambiguous; a hand-added contact belongs to exactly one organisation.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from inbox.clock import utcnow
from inbox.errors import Conflict, Invalid, NotFound
from inbox.service.base import UNSET, ServiceBase
from inbox.store.models import Contact, Organization, OrganizationMember

DOMAIN = re.compile(r"^(?=.{3,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+$")
MAX_DOMAINS = 50


def normalise_domains(raw: Sequence[str], field: str = "domains") -> list[str]:
    """Lower-case, "@" stripped, de-duplicated, each a valid host name; the error names the item."""
    if len(raw) > MAX_DOMAINS:
        raise Invalid(f"{field}: at most {MAX_DOMAINS} domains")
    found: list[str] = []
    for index, item in enumerate(raw):
        domain = item.strip().lower().removeprefix("@")
        if not DOMAIN.match(domain):
            raise Invalid(f"{field}[{index}]: {item!r} is not a domain such as example.com")
        if domain not in found:
            found.append(domain)
    return found


class OrganizationWrites(ServiceBase):
    """Create, change and delete organisations; add and remove hand-picked members."""

    async def create_organization(self, *, name: str, domains: Sequence[str] = (), notes: str = "") -> Organization:
        clean = normalise_domains(domains)
        async with self.store.transaction() as tx:
            await _name_free(tx, name)
            await _domains_free(tx, clean)
            organization = Organization(name=name, domains=clean, notes=notes)
            tx.add(organization)
        return organization

    async def update_organization(
        self, organization_id: int, *, name: Any = UNSET, domains: Any = UNSET, notes: Any = UNSET
    ) -> Organization:
        async with self.store.transaction() as tx:
            organization = await _organization(tx, organization_id)
            if name is not UNSET and name != organization.name:
                await _name_free(tx, name)
                organization.name = name
            if domains is not UNSET:
                clean = normalise_domains(domains)
                await _domains_free(tx, clean, but=organization_id)
                organization.domains = clean
            if notes is not UNSET:
                organization.notes = notes
            organization.updated_at = utcnow()
        return organization

    async def delete_organization(self, organization_id: int) -> None:
        async with self.store.transaction() as tx:
            organization = await _organization(tx, organization_id)
            await tx.execute(
                delete(OrganizationMember).where(col(OrganizationMember.organization_id) == organization_id)
            )
            await tx.delete(organization)

    async def add_organization_member(self, organization_id: int, contact_id: int) -> None:
        """Put a contact in the organisation by hand (moving it out of another one it was added to)."""
        async with self.store.transaction() as tx:
            await _organization(tx, organization_id)
            contact = await tx.get(Contact, contact_id)
            if contact is None or contact.merged_into_id is not None:
                raise Invalid(f"contact_id: contact {contact_id} does not exist")
            member = await tx.get(OrganizationMember, contact_id)
            if member is None:
                tx.add(OrganizationMember(contact_id=contact_id, organization_id=organization_id))
            else:
                member.organization_id = organization_id

    async def remove_organization_member(self, organization_id: int, contact_id: int) -> None:
        """Take a hand-added contact out (a contact that joined by its email domain stays by domain)."""
        async with self.store.transaction() as tx:
            member = await tx.get(OrganizationMember, contact_id)
            if member is None or member.organization_id != organization_id:
                raise NotFound(f"contact {contact_id} is not a hand-added member of organization {organization_id}")
            await tx.delete(member)


async def _organization(tx: AsyncSession, organization_id: int) -> Organization:
    organization = await tx.get(Organization, organization_id)
    if organization is None:
        raise NotFound(f"organization {organization_id} not found")
    return organization


async def _name_free(tx: AsyncSession, name: str) -> None:
    if (await tx.execute(select(Organization.id).where(col(Organization.name) == name))).first() is not None:
        raise Conflict(f"name: an organization named {name!r} exists")


async def _domains_free(tx: AsyncSession, domains: list[str], but: int | None = None) -> None:
    for other_id, name, taken in (
        await tx.execute(select(Organization.id, Organization.name, Organization.domains))
    ).all():
        if other_id == but:
            continue
        shared = sorted(set(domains) & set(taken or []))
        if shared:
            raise Conflict(f"domains: {shared[0]} belongs to organization {name!r}")
