"""The shop's tables: customers, their orders and items, returns, refunds and support tickets."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, List

from sqlalchemy import (
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import registry, relationship


@registry().as_declarative_base()
class Base:
    """The tables' declarative base, as a class (declarative_base()'s value is no type to mypy)."""

    metadata: MetaData

    if TYPE_CHECKING:  # the constructor the registry gives every table: one keyword per column

        def __init__(self, **columns: Any) -> None: ...


# Order statuses, in the order an order goes through them (or "cancelled" before it ships).
PROCESSING, SHIPPED, DELIVERED, CANCELLED = "processing", "shipped", "delivered", "cancelled"
OPEN = "open"  # a ticket's status until a person closes it


def partial_unique_index(name: str, column: str, where: str) -> Index:
    """A unique index over the rows that match `where` only, on SQLite and PostgreSQL (the shop's
    databases, see actions/db.py): the last line of defence against a race writing an effect twice."""
    return Index(name, column, unique=True, sqlite_where=text(where), postgresql_where=text(where))


class Customer(Base):
    __tablename__ = "customers"

    id = Column(Integer, primary_key=True)
    name = Column(String(120), nullable=False)
    email = Column(String(254), nullable=False, unique=True)
    phone = Column(String(40))

    orders: List["Order"] = relationship("Order", back_populates="customer", order_by="Order.number")


class Order(Base):
    __tablename__ = "orders"

    number = Column(String(20), primary_key=True)  # what the customer sees, e.g. "12345" or "A-7781"
    customer_id = Column(Integer, ForeignKey("customers.id"), nullable=False)
    status = Column(String(20), nullable=False, default=PROCESSING)
    placed_on = Column(Date, nullable=False)
    shipped_on = Column(Date)
    delivered_on = Column(Date)
    expected_on = Column(Date)
    shipping_address = Column(Text, nullable=False)
    carrier = Column(String(40))
    tracking_number = Column(String(60))

    customer: Customer = relationship("Customer", back_populates="orders")
    items: List["OrderItem"] = relationship("OrderItem", back_populates="order", order_by="OrderItem.id")
    returns: List["Return"] = relationship("Return", back_populates="order", order_by="Return.id")
    refunds: List["Refund"] = relationship("Refund", back_populates="order", order_by="Refund.id")

    @property
    def total_cents(self) -> int:
        return sum(item.price_cents * item.quantity for item in self.items)


class OrderItem(Base):
    __tablename__ = "order_items"

    id = Column(Integer, primary_key=True)
    order_number = Column(String(20), ForeignKey("orders.number"), nullable=False)
    product = Column(String(120), nullable=False)
    quantity = Column(Integer, nullable=False, default=1)
    price_cents = Column(Integer, nullable=False)  # money in whole cents: exact on every database

    order: Order = relationship("Order", back_populates="items")


class Return(Base):
    """A return of one item; the unique constraint makes a repeated request find the first one."""

    __tablename__ = "returns"
    __table_args__ = (UniqueConstraint("item_id", name="one_return_per_item"),)

    id = Column(Integer, primary_key=True)
    reference = Column(String(20), unique=True)
    order_number = Column(String(20), ForeignKey("orders.number"), nullable=False)
    item_id = Column(Integer, ForeignKey("order_items.id"), nullable=False)
    reason = Column(Text, nullable=False)
    status = Column(String(20), nullable=False, default="requested")
    created_at = Column(DateTime, nullable=False, default=datetime.utcnow)

    order: Order = relationship("Order", back_populates="returns")
    item: OrderItem = relationship("OrderItem")


class Refund(Base):
    """Money owed back: for a cancelled order at once, for a return once the item is back.

    One per return, and one cancellation refund (the one without a return) per order.
    """

    __tablename__ = "refunds"
    __table_args__ = (
        Index("one_refund_per_return", "return_id", unique=True),
        partial_unique_index("one_cancellation_refund_per_order", "order_number", "return_id IS NULL"),
    )

    id = Column(Integer, primary_key=True)
    order_number = Column(String(20), ForeignKey("orders.number"), nullable=False)
    return_id = Column(Integer, ForeignKey("returns.id"))
    amount_cents = Column(Integer, nullable=False)
    status = Column(String(20), nullable=False)  # "pending" (on its way) or "awaiting_return"
    created_at = Column(DateTime, nullable=False, default=datetime.utcnow)

    order: Order = relationship("Order", back_populates="refunds")


class Ticket(Base):
    """A hand-off to a human; one open ticket per conversation."""

    __tablename__ = "tickets"
    __table_args__ = (
        partial_unique_index("one_open_ticket_per_conversation", "conversation_id", f"status = '{OPEN}'"),
    )

    id = Column(Integer, primary_key=True)
    reference = Column(String(20), unique=True)
    conversation_id = Column(String(255), nullable=False, index=True)
    email = Column(String(254))
    order_number = Column(String(20))
    summary = Column(Text, nullable=False)
    status = Column(String(20), nullable=False, default=OPEN)
    created_at = Column(DateTime, nullable=False, default=datetime.utcnow)


def reference(prefix: str, row_id: int) -> str:
    """A short reference a customer can read out on the phone, e.g. RET-10007."""
    return f"{prefix}-{10000 + row_id}"


def dollars(cents: int) -> str:
    return f"${cents / 100:,.2f}"
