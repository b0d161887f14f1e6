"""The consumer's policy, on in-memory parts: apply once, dead-letter what cannot be read,
retry what fails for a while, and emit only through the unit of work."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from faststream.kafka import KafkaBroker, TestKafkaBroker
from opentelemetry import propagate
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from services.routing.handlers import Routing
from shared.calendar import WorkingCalendar
from shared.catalog import Catalog
from shared.events import DossierReceived, DossierRouted, Event, HandOffRequested, Topic
from shared.messaging.consumer import EventConsumer, in_time_order, subscribe
from shared.messaging.envelope import Envelope, WireMessage, encode
from shared.telemetry import DossierAttribute
from tests.factories import received_event
from tests.fakes.routing import InMemoryRoutingUnitOfWork
from tests.unit.conftest import hcmc

NOW = datetime(2026, 11, 23, 2, 30, tzinfo=UTC)


def received(code: str = "000.00.00.H29-261123-0001") -> DossierReceived:
    return received_event(
        code, received_at=hcmc(2026, 11, 23, 9, 30), appointment_at=hcmc(2026, 12, 8, 9, 30)
    )


@dataclass
class Record:
    value: bytes | None
    key: bytes | None
    headers: Sequence[tuple[str, bytes]]
    topic: str = Topic.INTAKE
    partition: int = 0
    offset: int = 7


EVENT_ID = "0b8e5f1c-7d3a-4f0e-9a1b-2c3d4e5f6a7b"


def hand_off(code: str) -> HandOffRequested:
    return HandOffRequested(
        dossier_code=code,
        from_unit_code="000.00.10.H29",
        to_unit_code="000.20.01.H29",
        official="Lê Văn Tư",
        requested_at=NOW,
    )


def record_of(event: Event, event_id: str = EVENT_ID) -> Record:
    message = encode(
        Envelope(
            id=event_id,
            type=event.TYPE,
            source="/onestop/intake",
            subject=event.dossier_code,
            time=NOW,
        ),
        event.model_dump_json().encode(),
    )
    return Record(
        value=message.value, key=message.key.encode(), headers=list(message.headers.items())
    )


@dataclass
class RecordingPublisher:
    sent: list[tuple[str, WireMessage]] = field(default_factory=list)

    async def send(self, topic: str, message: WireMessage) -> Awaitable[Any]:
        self.sent.append((topic, message))

        async def acked() -> None:
            return None

        return acked()

    async def recover(self, error: BaseException) -> None:
        return None


@pytest.fixture
def uow() -> InMemoryRoutingUnitOfWork:
    return InMemoryRoutingUnitOfWork()


@pytest.fixture
def consumer(
    catalog: Catalog, calendar: WorkingCalendar, uow: InMemoryRoutingUnitOfWork
) -> EventConsumer:
    routing = Routing(catalog=catalog, clock=lambda: NOW)
    return EventConsumer(
        group_id="routing",
        topics=(Topic.INTAKE,),
        handlers={
            DossierReceived: routing.on_dossier_received,
            HandOffRequested: routing.on_hand_off_requested,
        },
        unit_of_work=lambda: uow,
        publisher=RecordingPublisher(),
        max_backoff=0.01,
    )


async def test_an_event_is_applied_once_even_when_redelivered(
    consumer: EventConsumer, uow: InMemoryRoutingUnitOfWork
) -> None:
    record = record_of(received())
    await consumer.handle(record)
    await consumer.handle(record)

    assert [type(p.event) for p in uow.published] == [DossierRouted]
    routed = uow.published[0].event
    assert isinstance(routed, DossierRouted)
    assert [s.unit_code for s in routed.steps] == [
        "000.00.10.H29",
        "000.20.01.H29",
        "000.00.10.H29",
    ]
    assert sum(s.share for s in routed.steps) == pytest.approx(1.0)
    assert uow.published[0].causation_id == EVENT_ID  # what it reacts to


async def test_a_message_missing_its_prerequisite_is_parked_and_the_partition_moves_on(
    consumer: EventConsumer, uow: InMemoryRoutingUnitOfWork
) -> None:
    waiting, other = "000.00.00.H29-261123-0001", "000.00.00.H29-261123-0002"
    await consumer.handle(record_of(hand_off(waiting), event_id=str(uuid.uuid4())))
    await consumer.handle(record_of(hand_off(waiting), event_id=str(uuid.uuid4())))
    await consumer.handle(record_of(received(other), event_id=str(uuid.uuid4())))

    # The other dossier went through; both hand-offs wait, in order.
    assert [p.event.dossier_code for p in uow.published] == [other]
    parked = uow.parking.messages
    assert [m.reason.split(":")[0] for m in parked] == ["NotRoutedYet", "behind a parked event"]

    # Its receipt is applied (as if it came late): the parked hand-offs follow, in order.
    await consumer.handle(record_of(received(waiting), event_id=str(uuid.uuid4())))
    assert uow.parking.messages[-1].event_type == DossierReceived.TYPE  # same topic: behind
    routing = consumer.handlers[DossierReceived]
    await routing(received(waiting), uow)
    await uow.commit()
    await consumer.drain_parking_lot()
    assert uow.parking.messages == []
    decided = [type(p.event).__name__ for p in uow.published if p.event.dossier_code == waiting]
    # the routed event, the first hand-off recorded, the second rejected (already moved on)
    assert decided[:3] == ["DossierRouted", "HandOffRecorded", "HandOffRejected"]


async def test_a_parked_message_whose_prerequisite_never_comes_is_dead_lettered(
    consumer: EventConsumer, uow: InMemoryRoutingUnitOfWork
) -> None:
    expiring = replace(consumer, max_parking=timedelta(0))
    await expiring.handle(record_of(hand_off("000.00.00.H29-261123-0009")))
    await expiring.drain_parking_lot()

    publisher = expiring.publisher
    assert isinstance(publisher, RecordingPublisher)
    [(topic, message)] = publisher.sent
    assert topic == "onestop.dead-letter.routing"
    assert message.headers["dlt_error_stage"] == b"prerequisite"
    assert b"NotRoutedYet" in message.headers["dlt_error"]
    assert message.headers["ce_type"] == HandOffRequested.TYPE.encode()
    assert uow.parking.messages == []


async def test_a_malformed_message_is_dead_lettered_with_its_origin(
    consumer: EventConsumer, uow: InMemoryRoutingUnitOfWork
) -> None:
    bad = record_of(received())
    bad.value = b"{truncated"
    await consumer.handle(bad)

    publisher = consumer.publisher
    assert isinstance(publisher, RecordingPublisher)
    [(topic, message)] = publisher.sent
    assert topic == "onestop.dead-letter.routing"
    assert message.value == b"{truncated"
    assert message.headers["dlt_error_stage"] == b"decode"
    assert b"not a JSON object" in message.headers["dlt_error"]
    assert message.headers["dlt_origin_offset"] == b"7"
    assert message.headers["ce_type"] == DossierReceived.TYPE.encode()
    assert uow.published == []


async def test_a_transient_failure_is_retried_until_it_succeeds(
    consumer: EventConsumer, uow: InMemoryRoutingUnitOfWork
) -> None:
    failures = iter([ConnectionRefusedError(), OSError("reset"), None])
    original_claim = uow.claim

    async def flaky_claim(event_id: str, event_type: str, source: str) -> bool:
        error = next(failures)
        if error is not None:
            raise error
        return await original_claim(event_id, event_type, source)

    uow.claim = flaky_claim  # type: ignore[method-assign]
    await consumer.handle(record_of(received()))
    assert len(uow.published) == 1


async def test_a_failure_that_is_not_transient_is_dead_lettered(
    consumer: EventConsumer, uow: InMemoryRoutingUnitOfWork
) -> None:
    unknown_procedure = received().model_copy(update={"procedure_code": "9.999999"})
    await consumer.handle(record_of(unknown_procedure))

    publisher = consumer.publisher
    assert isinstance(publisher, RecordingPublisher)
    [(_, message)] = publisher.sent
    assert message.headers["dlt_error_stage"] == b"apply"
    assert b"UnknownProcedure" in message.headers["dlt_error"]
    assert uow.published == []


async def test_the_subscriber_wiring_with_the_in_memory_broker(
    consumer: EventConsumer, uow: InMemoryRoutingUnitOfWork
) -> None:
    broker = KafkaBroker()
    subscribe(broker, consumer)
    message = record_of(received())
    async with TestKafkaBroker(broker) as test_broker:
        await test_broker.publish(
            message.value,
            topic=Topic.INTAKE,
            key=message.key,
            headers={name: value.decode() for name, value in message.headers},
        )
    assert [type(p.event) for p in uow.published] == [DossierRouted]


# --- batches ---------------------------------------------------------------------------------

FIRST, SECOND, ORPHAN, BROKEN = (f"000.00.00.H29-261123-000{n}" for n in (1, 2, 3, 4))
FIRST_ID, SECOND_ID = str(uuid.uuid4()), str(uuid.uuid4())


async def test_a_batch_applies_each_record_once_and_each_emitted_event_names_its_cause(
    consumer: EventConsumer, uow: InMemoryRoutingUnitOfWork
) -> None:
    batch = [
        record_of(received(FIRST), FIRST_ID),
        record_of(received(FIRST), FIRST_ID),  # redelivered within the batch
        record_of(received(SECOND), SECOND_ID),
    ]
    await consumer.handle_batch(batch)
    await consumer.handle_batch(batch)

    assert [(p.event.dossier_code, p.causation_id) for p in uow.published] == [
        (FIRST, FIRST_ID),
        (SECOND, SECOND_ID),
    ]


async def test_a_failing_record_leaves_the_rest_of_its_batch_applied_once(
    consumer: EventConsumer, uow: InMemoryRoutingUnitOfWork
) -> None:
    unknown_procedure = received(BROKEN).model_copy(update={"procedure_code": "9.999999"})
    unreadable = replace(record_of(received(BROKEN)), value=b"{broken")
    await consumer.handle_batch(
        [
            record_of(received(FIRST), FIRST_ID),
            unreadable,
            record_of(hand_off(ORPHAN), str(uuid.uuid4())),  # not routed: parked
            record_of(received(ORPHAN), str(uuid.uuid4())),  # parked behind it
            record_of(unknown_procedure, str(uuid.uuid4())),
            record_of(received(SECOND), SECOND_ID),
        ]
    )

    assert [(p.event.dossier_code, p.causation_id) for p in uow.published] == [
        (FIRST, FIRST_ID),
        (SECOND, SECOND_ID),
    ]
    assert [(m.dossier_code, m.event_type) for m in uow.parking.messages] == [
        (ORPHAN, HandOffRequested.TYPE),
        (ORPHAN, DossierReceived.TYPE),
    ]
    publisher = consumer.publisher
    assert isinstance(publisher, RecordingPublisher)
    assert [m.headers["dlt_error_stage"] for _, m in publisher.sent] == [b"decode", b"apply"]


def test_a_batch_is_merged_by_record_time_keeping_each_partitions_order() -> None:
    @dataclass
    class Timed:
        topic: str
        partition: int
        timestamp: int

    intake = [Timed("intake", 0, 10), Timed("intake", 0, 30), Timed("intake", 0, 20)]
    routing = [Timed("routing", 0, 15), Timed("routing", 0, 25)]

    merged: list[Any] = in_time_order([*routing, *intake])  # type: ignore[list-item]

    assert [(r.topic, r.timestamp) for r in merged] == [
        ("intake", 10),
        ("routing", 15),
        ("routing", 25),
        ("intake", 30),
        ("intake", 20),  # after 30: its partition's order comes first
    ]


async def test_each_record_of_a_batch_has_one_processing_span_in_its_producers_trace(
    catalog: Catalog, calendar: WorkingCalendar, uow: InMemoryRoutingUnitOfWork
) -> None:
    """Also when the batch falls back to one record at a time, and for a record that is
    dead-lettered because it cannot be read."""
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    tracer = provider.get_tracer("test")
    traced = EventConsumer(
        group_id="routing",
        topics=(Topic.INTAKE,),
        handlers={DossierReceived: Routing(catalog=catalog, clock=lambda: NOW).on_dossier_received},
        unit_of_work=lambda: uow,
        publisher=RecordingPublisher(),
        max_backoff=0.01,
        tracer=tracer,
    )
    unknown_procedure = received(BROKEN).model_copy(update={"procedure_code": "9.999999"})
    records = [
        record_of(received(FIRST), FIRST_ID),
        replace(record_of(received(ORPHAN)), value=b"{broken"),  # dead-lettered at decode
        record_of(unknown_procedure, str(uuid.uuid4())),  # fails: the batch goes one by one
        record_of(received(SECOND), SECOND_ID),
    ]
    producers: list[int] = []
    with_context = []
    for offset, record in enumerate(records):
        with tracer.start_as_current_span("publish") as producer:
            carrier: dict[str, str] = {}
            propagate.inject(carrier)
        producers.append(producer.get_span_context().span_id)
        headers = [*record.headers, *((k, v.encode()) for k, v in carrier.items())]
        with_context.append(replace(record, headers=headers, offset=offset))
    spans.clear()

    await traced.handle_batch(with_context)

    processing = [s for s in spans.get_finished_spans() if s.name == f"{Topic.INTAKE} process"]
    by_offset = {(s.attributes or {})["messaging.kafka.message.offset"]: s for s in processing}
    assert len(processing) == len(records) == len(by_offset)
    for offset, producer_id in enumerate(producers):
        span = by_offset[offset]
        assert span.kind is SpanKind.CONSUMER
        assert span.parent is not None and span.parent.span_id == producer_id
    codes = [(by_offset[n].attributes or {}).get(DossierAttribute.CODE) for n in range(4)]
    assert codes == [FIRST, None, BROKEN, SECOND]
    assert [p.event.dossier_code for p in uow.published] == [FIRST, SECOND]


async def test_a_known_event_type_without_a_handler_is_neither_decoded_nor_traced(
    catalog: Catalog, uow: InMemoryRoutingUnitOfWork
) -> None:
    """Told by its ce_type header: its body is never read (a broken one is not dead-lettered
    here; the groups that handle the type do that), and it opens no span. A type unknown to
    this version goes the old way: decoded, traced, ignored."""
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    publisher = RecordingPublisher()
    traced = EventConsumer(
        group_id="routing",
        topics=(Topic.INTAKE,),
        handlers={DossierReceived: Routing(catalog=catalog, clock=lambda: NOW).on_dossier_received},
        unit_of_work=lambda: uow,
        publisher=publisher,
        max_backoff=0.01,
        tracer=provider.get_tracer("test"),
    )
    handled = record_of(received(FIRST), FIRST_ID)
    ignored = replace(
        handled,
        value=b"{broken",
        headers=[
            (name, DossierRouted.TYPE.encode() if name == "ce_type" else value)
            for name, value in handled.headers
        ],
        offset=8,
    )
    unknown_type = replace(
        ignored,
        headers=[
            (name, b"vn.gov.hcm.onestop.NeverHeardOf" if name == "ce_type" else value)
            for name, value in handled.headers
        ],
        offset=9,
    )

    await traced.handle_batch([handled, ignored, unknown_type])
    await traced.handle(ignored)

    processing = spans.get_finished_spans()
    offsets = {(s.attributes or {}).get("messaging.kafka.message.offset") for s in processing}
    # The handled record, and the unknown type: decoded (as before) to learn it is unknown.
    assert offsets == {7, 9}
    assert [p.event.dossier_code for p in uow.published] == [FIRST]
    assert publisher.sent == []


def test_the_subscriber_prefetches_a_bounded_amount_per_partition(
    consumer: EventConsumer,
) -> None:
    """aiokafka's default (1 MiB a partition) kept hundreds of events per partition in memory
    during a backlog; the subscriber asks for `fetch_partition_bytes` (read from FastStream's
    connection arguments, which it hands to aiokafka's consumer)."""
    subscriber = subscribe(KafkaBroker("127.0.0.1:1"), consumer)

    assert consumer.fetch_partition_bytes == 256 * 1024
    assert subscriber._connection_args["max_partition_fetch_bytes"] == 256 * 1024
