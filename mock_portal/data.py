"""Deterministic sample orders: the same seed always yields the same orders, times and ids."""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

# The portal shows Beijing time, as the real backend does.
CST = timezone(timedelta(hours=8), "CST")
FIRST_ORDER_NO = 1455953150
# Order times lie in the 60 days before an epoch derived from the seed, so pages are reproducible.
EPOCH_BASE = datetime(2025, 6, 1, 9, 0, tzinfo=CST)
HISTORY = timedelta(days=60)

UNPAID = "等待买家付款"
AWAITING_SHIPMENT = "待发货"
UNDER_REVIEW = "取消审核中"
SHIPPED = "已发货"
COMPLETED = "交易成功"
CANCELLED = "已取消"
STATUSES: tuple[str, ...] = (UNPAID, AWAITING_SHIPMENT, UNDER_REVIEW, SHIPPED, COMPLETED, CANCELLED)
STATUS_WEIGHTS: tuple[int, ...] = (10, 45, 5, 20, 12, 8)
CANCELLABLE: frozenset[str] = frozenset({UNPAID, AWAITING_SHIPMENT})

# Reason code (the form value) -> option text of the 取消原因 dropdown.
REASONS: dict[str, str] = {
    "out_of_stock": "缺货",
    "price_error": "价格设置错误",
    "buyer_request": "买家要求取消",
    "undeliverable": "无法配送至买家地址",
    "other": "其他",
}
NOTE_REQUIRED_FOR: frozenset[str] = frozenset({"other"})
NOTE_MAX_LENGTH = 500

REVIEW_APPROVED = "审核通过"
REVIEW_REJECTED = "审核未通过"

BUYERS: tuple[tuple[str, str], ...] = (
    ("John Smith", "美国"),
    ("Emily Johnson", "美国"),
    ("Michael Brown", "美国"),
    ("Olivia Wilson", "加拿大"),
    ("Liam Tremblay", "加拿大"),
    ("Oliver Taylor", "英国"),
    ("Amelia Davies", "英国"),
    ("Lukas Müller", "德国"),
    ("Hannah Schmidt", "德国"),
    ("Camille Dubois", "法国"),
    ("Lucas Martin", "法国"),
    ("Giulia Rossi", "意大利"),
    ("Marco Bianchi", "意大利"),
    ("Sofía García", "西班牙"),
    ("Javier López", "西班牙"),
    ("João Silva", "巴西"),
    ("Ana Souza", "巴西"),
    ("Diego Hernández", "墨西哥"),
    ("Valentina Pérez", "阿根廷"),
    ("Ivan Petrov", "俄罗斯"),
    ("Anna Kowalska", "波兰"),
    ("Daan de Vries", "荷兰"),
    ("Erik Andersson", "瑞典"),
    ("Mehmet Yılmaz", "土耳其"),
    ("Ahmed Al-Sayed", "沙特阿拉伯"),
    ("Fatima Khan", "阿联酋"),
    ("Chloe Williams", "澳大利亚"),
    ("Jack Thompson", "新西兰"),
    ("Priya Sharma", "印度"),
    ("Nguyen Van An", "越南"),
    ("Siti Rahma", "印度尼西亚"),
    ("Chinedu Okafor", "尼日利亚"),
    ("Thabo Nkosi", "南非"),
    ("Kenji Sato", "日本"),
    ("Min-jun Kim", "韩国"),
    ("Maria Santos", "菲律宾"),
)

# (Chinese name, English name, lowest and highest unit price in cents)
PRODUCTS: tuple[tuple[str, str, int, int], ...] = (
    ("蓝牙耳机", "Bluetooth Earbuds", 899, 3999),
    ("智能手表", "Smart Watch", 1599, 8999),
    ("手机壳", "Phone Case", 199, 1299),
    ("数据线", "USB-C Charging Cable", 150, 899),
    ("移动电源", "Power Bank 10000mAh", 999, 2999),
    ("LED 灯带", "LED Strip Lights", 599, 2499),
    ("假发", "Human Hair Wig", 2999, 15999),
    ("婚纱", "Wedding Dress", 5999, 29999),
    ("运动鞋", "Running Shoes", 1999, 6999),
    ("太阳镜", "Polarized Sunglasses", 399, 1999),
    ("女士手提包", "Women's Handbag", 1299, 5999),
    ("机械键盘", "Mechanical Keyboard", 2499, 8999),
    ("无线鼠标", "Wireless Mouse", 499, 1999),
    ("瑜伽裤", "Yoga Leggings", 699, 2499),
    ("儿童玩具车", "Kids RC Car", 1199, 4999),
    ("钓鱼竿", "Telescopic Fishing Rod", 899, 3999),
    ("汽车手机支架", "Car Phone Mount", 299, 1299),
    ("不锈钢保温杯", "Stainless Steel Tumbler", 499, 1899),
    ("电动牙刷", "Electric Toothbrush", 999, 3999),
    ("美甲套装", "Nail Art Kit", 399, 1999),
    ("足球球衣", "Soccer Jersey", 1299, 3499),
    ("行车记录仪", "Dash Cam 1080P", 1999, 6999),
    ("宠物牵引绳", "Dog Leash", 299, 1299),
    ("硅胶厨具", "Silicone Kitchen Utensils Set", 899, 2999),
)

CARRIERS: tuple[str, ...] = ("DHL", "EMS", "UPS", "FedEx", "DHgate Logistics")


@dataclass
class Product:
    """One line of an order."""

    name: str
    sku: str
    quantity: int
    unit_cents: int

    @property
    def total_cents(self) -> int:
        """Quantity times unit price."""
        return self.quantity * self.unit_cents


@dataclass
class Event:
    """One dated entry of an order's status timeline."""

    at: datetime
    text: str


@dataclass
class CancelRequest:
    """The seller's latest cancel request for an order."""

    reason: str  # option text, e.g. 缺货
    note: str
    at: datetime


@dataclass
class Order:
    """One order as the seller backend knows it."""

    order_no: str
    internal_id: str
    account: str
    status: str
    created_at: datetime
    paid_at: datetime | None
    buyer_name: str
    buyer_country: str
    products: list[Product]
    events: list[Event] = field(default_factory=list)
    cancel_request: CancelRequest | None = None
    review_result: str | None = None
    review_comment: str = ""
    cancelled_at: datetime | None = None
    refund_cents: int | None = None
    fine_cents: int | None = None

    @property
    def amount_cents(self) -> int:
        """What the buyer pays (or paid) for the whole order."""
        return sum(p.total_cents for p in self.products)


def internal_id(seed: int, order_no: str) -> str:
    """The 32-character id in detail URLs; deliberately not the order number."""
    return hashlib.md5(f"dhgate-mock:{seed}:{order_no}".encode()).hexdigest()


def epoch_for(seed: int) -> datetime:
    """The fixed 'now' the sample history ends at, derived from the seed."""
    return EPOCH_BASE + timedelta(minutes=seed % (60 * 24 * 90))


def format_usd(cents: int) -> str:
    """Money as the portal writes it: US $12.34."""
    return f"US ${cents // 100}.{cents % 100:02d}"


def cancellation_fine(amount_cents: int) -> int:
    """10% of what the buyer paid, at least US $5 and at most US $20."""
    return min(max(amount_cents // 10, 500), 2000)


def _between(rng: random.Random, start: datetime, end: datetime) -> datetime:
    span = max((end - start).total_seconds(), 60.0)
    return start + timedelta(seconds=int(rng.uniform(30, span)))


def _products(rng: random.Random) -> list[Product]:
    picks = rng.sample(PRODUCTS, rng.choices((1, 2, 3), weights=(60, 28, 12))[0])
    return [
        Product(
            name=f"{zh} {en}",
            sku=f"SKU-{rng.randrange(100000, 999999)}",
            quantity=rng.choices((1, 2, 3, 5, 10), weights=(60, 20, 10, 6, 4))[0],
            unit_cents=rng.randrange(low, high + 1),
        )
        for zh, en, low, high in picks
    ]


def generate_orders(seed: int, count: int, accounts: list[str]) -> list[Order]:
    """``count`` orders, order_no ascending with time, assigned round-robin to ``accounts``."""
    rng = random.Random(seed)
    epoch = epoch_for(seed)
    offsets = sorted((rng.uniform(0, HISTORY.total_seconds()) for _ in range(count)), reverse=True)
    orders: list[Order] = []
    for i, offset in enumerate(offsets):
        order_no = str(FIRST_ORDER_NO + i)
        created = (epoch - timedelta(seconds=offset)).replace(microsecond=0)
        status = rng.choices(STATUSES, weights=STATUS_WEIGHTS)[0]
        buyer, country = rng.choice(BUYERS)
        order = Order(
            order_no=order_no,
            internal_id=internal_id(seed, order_no),
            account=accounts[i % len(accounts)],
            status=status,
            created_at=created,
            paid_at=None,
            buyer_name=buyer,
            buyer_country=country,
            products=_products(rng),
        )
        order.events.append(Event(created, "买家下单"))
        # An order cancelled in the sample history was either never paid or paid and refunded.
        paid = status != UNPAID and not (status == CANCELLED and rng.random() < 0.4)
        if paid:
            order.paid_at = _between(rng, created, min(created + timedelta(days=2), epoch))
            order.events.append(Event(order.paid_at, "买家付款成功"))
        last = order.paid_at or created
        if status in (SHIPPED, COMPLETED):
            shipped = _between(rng, last, min(last + timedelta(days=4), epoch))
            tracking = f"{rng.choice(CARRIERS)} {rng.randrange(10**9, 10**10)}"
            order.events.append(Event(shipped, f"卖家已发货（{tracking}）"))
            if status == COMPLETED:
                done = _between(rng, shipped, epoch)
                order.events.append(Event(done, "买家确认收货，交易成功"))
        elif status in (UNDER_REVIEW, CANCELLED):
            reason = rng.choice(("缺货", "价格设置错误", "买家要求取消"))
            asked = _between(rng, last, min(last + timedelta(days=3), epoch))
            order.cancel_request = CancelRequest(reason, "", asked)
            order.events.append(Event(asked, f"卖家提交取消申请（原因：{reason}）"))
            if status == CANCELLED:
                apply_cancellation(
                    order, _between(rng, asked, min(asked + timedelta(days=2), epoch))
                )
        orders.append(order)
    return orders


def apply_cancellation(order: Order, at: datetime) -> None:
    """Cancel ``order`` at ``at``; a paid one was approved by review, refunded and fined."""
    order.status = CANCELLED
    order.cancelled_at = at
    if order.paid_at is not None:
        order.review_result = REVIEW_APPROVED
        order.refund_cents = order.amount_cents
        order.fine_cents = cancellation_fine(order.amount_cents)
        order.events.append(Event(at, "平台审核通过，订单已取消"))
        order.events.append(Event(at, f"退款 {format_usd(order.amount_cents)} 已退回买家账户"))
    else:
        order.events.append(Event(at, "卖家取消订单，交易关闭"))
