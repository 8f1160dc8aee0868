"""What the assistant may do in the shop, each as one transaction that is safe to repeat.

Every operation verifies the customer (order number and the order's email), answers with plain
data (no database objects leave this module) and raises a `ShopError` that names the response in
domain.yml which tells the customer why. Repeating a write finds the first one's result instead of
doing it twice, also when the repeat runs at the same moment in another process: a write locks the
order it reads (actions/db.py), and should a race still slip through, the database's unique indexes
(actions/models.py) refuse the second effect and the write answers with the first one's result.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from datetime import date
from typing import Any, Callable, Optional, Tuple, TypeVar

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError, StatementError
from sqlalchemy.orm import Session

from actions.answers import match_product
from actions.db import transaction
from actions.models import CANCELLED, DELIVERED, OPEN, PROCESSING, Order, Refund, Return, Ticket, dollars, reference

logger = logging.getLogger(__name__)

RETURN_WINDOW_DAYS = 30
BACKEND_DOWN = "utter_backend_down"  # the response that apologises for a failed database


class ShopError(Exception):
    """A request the shop cannot fulfil: `response` names the response in domain.yml that tells the
    customer why, filled with `values` (never personal data: Rasa logs them unredacted). The
    message is for the log."""

    def __init__(self, response: str, log: str = "", **values: Any) -> None:
        super().__init__(log or f"{response} {values}")
        self.response, self.values = response, values


class OrderNotFound(ShopError):
    pass


class EmailMismatch(ShopError):
    pass


class NotAllowed(ShopError):
    """The order is in a state that does not allow the change (shipped, too late to return...)."""


class BackendUnavailable(ShopError):
    """The database failed; the customer should try again later or ask for a person."""

    def __init__(self, failure: str) -> None:
        super().__init__(BACKEND_DOWN, failure)


@dataclass(frozen=True)
class OrderInfo:
    number: str
    status: str
    shipped_on: Optional[date]
    delivered_on: Optional[date]
    expected_on: Optional[date]
    carrier: Optional[str]
    tracking_number: Optional[str]
    products: Tuple[str, ...]
    returns: Tuple[str, ...]  # "RET-10001 (toaster, requested)"
    refunds: Tuple[str, ...]  # "$45.00 pending"


@dataclass(frozen=True)
class Outcome:
    """The result of a write; `done_now` is False when an earlier identical request already did it."""

    reference: str
    done_now: bool
    detail: str = ""


T = TypeVar("T")


def _backend(operation: Callable[..., T]) -> Callable[..., T]:
    """Turn database failures into BackendUnavailable, which the actions answer politely and log."""

    @functools.wraps(operation)
    def wrapper(*args, **kwargs) -> T:
        try:
            return operation(*args, **kwargs)
        except SQLAlchemyError as error:
            raise BackendUnavailable(
                f"The shop's database failed during {operation.__name__}: {describe_failure(error)}"
            ) from error

    return wrapper


def describe_failure(error: SQLAlchemyError) -> str:
    """What failed, for a log: never the statement's parameters, nor the values a database quotes
    back (PostgreSQL's "Key (conversation_id)=(...) already exists", "invalid input ...: '...'").
    Only a connection or locking failure (OperationalError) keeps the driver's first line, which
    says what to fix ("could not connect to server", "database is locked")."""
    if not isinstance(error, StatementError) or error.orig is None:
        return f"{type(error).__name__}: {_first_line(error)}"
    code = getattr(error.orig, "pgcode", None)
    text = f"{type(error).__name__} ({type(error.orig).__name__}{f', SQLSTATE {code}' if code else ''})"
    return f"{text}: {_first_line(error.orig)}" if isinstance(error, OperationalError) else text


def _first_line(error: BaseException) -> str:
    return next(iter(str(error).strip().splitlines()), "")


def _first_one_wins(write: Callable[..., T]) -> Callable[..., T]:
    """A write that a concurrent identical one beat to a unique index (models.py) runs once more:
    it then finds the first one's result and answers with it (done_now=False), not with an error."""

    @functools.wraps(write)
    def wrapper(*args, **kwargs) -> T:
        try:
            return write(*args, **kwargs)
        except IntegrityError:
            logger.info("%s lost a race to an identical request; answering with that one's result", write.__name__)
            return write(*args, **kwargs)

    return wrapper


def _order(session: Session, number: str, lock: bool = False) -> Order:
    """The order; with `lock`, its row stays locked until the transaction ends (FOR UPDATE on
    PostgreSQL; SQLite's write transaction locks the whole database anyway)."""
    order = session.get(Order, number, with_for_update=True if lock else None, populate_existing=lock)
    if order is None:
        raise OrderNotFound("utter_order_not_found", order_id=number)
    return order


def _verified(session: Session, number: str, email: str, lock: bool = False) -> Order:
    order = _order(session, number, lock)
    if order.customer.email.lower() != (email or "").strip().lower():
        raise EmailMismatch("utter_email_mismatch", order_id=number)
    return order


def _info(order: Order) -> OrderInfo:
    return OrderInfo(
        number=order.number,
        status=order.status,
        shipped_on=order.shipped_on,
        delivered_on=order.delivered_on,
        expected_on=order.expected_on,
        carrier=order.carrier,
        tracking_number=order.tracking_number,
        products=tuple(item.product for item in order.items),
        returns=tuple(f"{r.reference} ({r.item.product}, {r.status})" for r in order.returns),
        refunds=tuple(f"{dollars(r.amount_cents)} {r.status.replace('_', ' ')}" for r in order.refunds),
    )


@_backend
def order_exists(number: str) -> bool:
    with transaction() as session:
        return session.get(Order, number) is not None


@_backend
def verify(number: str, email: str) -> OrderInfo:
    """The order, if `email` is the one it was placed with."""
    with transaction() as session:
        return _info(_verified(session, number, email))


def cancellation_problem(order: OrderInfo) -> Optional[NotAllowed]:
    """Why the order cannot be cancelled; None when it can."""
    if order.status == PROCESSING:
        return None
    return NotAllowed(
        "utter_already_cancelled" if order.status == CANCELLED else "utter_cancel_too_late", order_id=order.number
    )


def address_change_problem(order: OrderInfo) -> Optional[NotAllowed]:
    """Why the order's delivery address cannot change; None when it can."""
    if order.status == PROCESSING:
        return None
    return NotAllowed(
        "utter_address_of_cancelled_order" if order.status == CANCELLED else "utter_address_change_too_late",
        order_id=order.number,
    )


def return_problem(order: OrderInfo, today: Optional[date] = None) -> Optional[NotAllowed]:
    """Why the order's items cannot be returned; None when they can."""
    today = today or date.today()
    if order.status != DELIVERED or order.delivered_on is None:
        return NotAllowed(
            "utter_return_not_shipped" if order.status == PROCESSING else "utter_return_not_delivered",
            order_id=order.number,
            status=order.status,
        )
    if (today - order.delivered_on).days > RETURN_WINDOW_DAYS:
        return NotAllowed(
            "utter_return_too_late",
            order_id=order.number,
            days=RETURN_WINDOW_DAYS,
            delivered_on=f"{order.delivered_on:%B %d, %Y}",
        )
    return None


@_backend
@_first_one_wins
def cancel_order(number: str, email: str) -> Outcome:
    with transaction(write=True) as session:
        order = _verified(session, number, email, lock=True)
        if order.status == CANCELLED:
            refund = order.refunds[-1].amount_cents if order.refunds else order.total_cents
            return Outcome(order.number, False, dollars(refund))
        problem = cancellation_problem(_info(order))
        if problem:
            raise problem
        order.status = CANCELLED
        order.refunds.append(Refund(amount_cents=order.total_cents, status="pending"))
        return Outcome(order.number, True, dollars(order.total_cents))


@_backend
@_first_one_wins
def start_return(number: str, email: str, product: str, reason: str, today: Optional[date] = None) -> Outcome:
    with transaction(write=True) as session:
        order = _verified(session, number, email, lock=True)
        info = _info(order)
        problem = return_problem(info, today)
        if problem:
            raise problem
        name = match_product(info.products, product)
        item = next((item for item in order.items if item.product == name), None)
        if item is None:
            raise NotAllowed(
                "utter_no_such_product", order_id=number, product=product, products=", ".join(info.products)
            )
        existing = session.scalars(select(Return).filter_by(item_id=item.id)).one_or_none()
        if existing is not None:
            return Outcome(existing.reference, False, item.product)
        created = Return(order=order, item=item, reason=reason.strip())
        session.add(created)
        session.flush()
        created.reference = reference("RET", created.id)
        session.add(
            Refund(
                order=order,
                return_id=created.id,
                amount_cents=item.price_cents * item.quantity,
                status="awaiting_return",
            )
        )
        return Outcome(created.reference, True, item.product)


@_backend
@_first_one_wins
def change_address(number: str, email: str, address: str) -> Outcome:
    with transaction(write=True) as session:
        order = _verified(session, number, email, lock=True)
        address = " ".join(address.split())
        if " ".join(order.shipping_address.split()) == address:
            return Outcome(order.number, False, order.shipping_address)
        problem = address_change_problem(_info(order))
        if problem:
            raise problem
        order.shipping_address = address
        return Outcome(order.number, True, order.shipping_address)


@_backend
@_first_one_wins
def open_ticket(
    conversation_id: str, summary: str, email: Optional[str] = None, order_number: Optional[str] = None
) -> Outcome:
    """A ticket for a person to pick up; the conversation's open ticket if it already has one."""
    with transaction(write=True) as session:
        existing = session.scalars(
            select(Ticket).filter_by(conversation_id=conversation_id, status=OPEN).with_for_update()
        ).first()
        if existing is not None:
            return Outcome(existing.reference, False)
        ticket = Ticket(conversation_id=conversation_id, summary=summary, email=email, order_number=order_number)
        session.add(ticket)
        session.flush()
        ticket.reference = reference("TCK", ticket.id)
        return Outcome(ticket.reference, True)
