#!/usr/bin/env python3
"""End-to-end client of the hotline's gRPC server, written as another system would write it.

It has no generated stubs and no .proto files: every message class comes from the server's
reflection service (grpc.reflection.v1alpha), through a descriptor pool backed by a
reflection descriptor database. Only grpcio, grpcio-reflection and protobuf are used.

Modes:

  (default)   check the staff services: reflection lists them, health says SERVING,
              DirectoryService.Search finds a birth certificate, CaseService answers GetCase
              (found, NOT_FOUND, INVALID_ARGUMENT on a wrong check digit), ListCases,
              UpdateStatus and Answer. Needs --case, a case in status RECEIVED, which the
              run forwards and answers.
  --converse  act as a media gateway: check that reflection lists MediaGateway, open
              MediaGateway.Converse, send CallStart, then key the next group of --keys
              each time the assistant listens, and print what comes down. Groups are
              separated by spaces ("3 1234567894#": 3 in the menu, then the whole number);
              without spaces each key is its own group ("21#"). The call ends when the
              assistant hangs up or transfers, or when it listens and no keys are left
              (the caller hangs up).

Each check prints one "ok:" line; a failed check prints "FAIL:" and the run goes on. The exit
status is 0 when every check passed, 1 when one failed, 2 on bad usage or a lost connection.
"""

import argparse
import queue
import re
import sys
import threading

import grpc
from google.protobuf import descriptor_pool, message_factory
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

CASE_SERVICE = "ivr.v1.CaseService"
DIRECTORY_SERVICE = "ivr.v1.DirectoryService"
HEALTH_SERVICE = "grpc.health.v1.Health"
MEDIA_GATEWAY = "ivr.v1.MediaGateway"

# Damm's quasigroup of order 10, as the server computes case check digits.
DAMM = (
    (0, 3, 1, 7, 5, 9, 8, 6, 4, 2),
    (7, 0, 9, 2, 1, 5, 4, 8, 6, 3),
    (4, 2, 0, 6, 8, 7, 1, 3, 5, 9),
    (1, 7, 5, 0, 9, 8, 3, 4, 2, 6),
    (6, 1, 2, 3, 0, 4, 5, 9, 7, 8),
    (3, 6, 7, 4, 2, 0, 9, 5, 8, 1),
    (5, 8, 6, 9, 7, 2, 0, 1, 3, 4),
    (8, 9, 4, 5, 3, 6, 2, 0, 1, 7),
    (9, 4, 3, 8, 6, 1, 7, 2, 0, 5),
    (2, 5, 8, 1, 4, 3, 6, 7, 9, 0),
)


def damm(digits):
    """The Damm check digit of a string of digits."""
    interim = 0
    for digit in digits:
        interim = DAMM[interim][int(digit)]
    return interim


class Reflected:
    """Message classes and callables for a server's services, from its reflection service."""

    def __init__(self, channel):
        self.channel = channel
        self.database = ProtoReflectionDescriptorDatabase(channel)
        self.pool = descriptor_pool.DescriptorPool(self.database)

    def services(self):
        return list(self.database.get_services())

    def message(self, full_name):
        return message_factory.GetMessageClass(self.pool.FindMessageTypeByName(full_name))

    def enum_value(self, enum_name, value_name):
        return self.pool.FindEnumTypeByName(enum_name).values_by_name[value_name].number

    def method(self, service_name, method_name):
        """(request class, callable) for one method; the callable matches its streaming kind."""
        service = self.pool.FindServiceByName(service_name)
        method = service.methods_by_name[method_name]
        request = message_factory.GetMessageClass(method.input_type)
        response = message_factory.GetMessageClass(method.output_type)
        path = f"/{service_name}/{method_name}"
        kinds = {
            (False, False): self.channel.unary_unary,
            (False, True): self.channel.unary_stream,
            (True, False): self.channel.stream_unary,
            (True, True): self.channel.stream_stream,
        }
        make = kinds[(method.client_streaming, method.server_streaming)]
        return request, make(
            path,
            request_serializer=request.SerializeToString,
            response_deserializer=response.FromString,
        )


class Checks:
    """Counts and prints check results."""

    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, condition, what, detail=""):
        if condition:
            self.passed += 1
            print(f"ok: {what}")
        else:
            self.failed += 1
            print(f"FAIL: {what}{': ' + str(detail) if detail else ''}")
        return condition

    def expect_code(self, call, request, code, what, timeout, message_part=None):
        """Checks that `call(request)` fails with `code` (and a message holding message_part)."""
        try:
            response = call(request, timeout=timeout)
        except grpc.RpcError as error:
            detail = f"{error.code()} {error.details()!r}"
            ok = error.code() == code and (
                message_part is None or message_part in (error.details() or "")
            )
            return self.check(ok, what, detail)
        return self.check(False, what, f"succeeded with {response}")


def check_services(args, channel):
    checks = Checks()
    reflected = Reflected(channel)
    timeout = args.timeout

    names = reflected.services()
    print(f"services: {' '.join(sorted(names))}")
    for name in (CASE_SERVICE, DIRECTORY_SERVICE, HEALTH_SERVICE):
        checks.check(name in names, f"reflection lists {name}", names)

    check_request, check = reflected.method(HEALTH_SERVICE, "Check")
    serving = reflected.enum_value(
        "grpc.health.v1.HealthCheckResponse.ServingStatus", "SERVING"
    )
    for name in ("", CASE_SERVICE, DIRECTORY_SERVICE):
        status = check(check_request(service=name), timeout=timeout).status
        checks.check(status == serving, f"health of {name or 'the server'} is SERVING", status)

    search_request, search = reflected.method(DIRECTORY_SERVICE, "Search")
    hits = search(
        search_request(query="birth certificate", locale="en"), timeout=timeout
    ).hits
    top = hits[0].service if hits else None
    if checks.check(top is not None, "Search finds services for 'birth certificate'"):
        print(f"search: {top.name_en} (score {hits[0].score:.2f})")
        for sentence in top.read_out:
            print(f"search:   {sentence}")
        name = top.name_en.lower()
        checks.check(
            "birth" in name and "certificate" in name,
            "the best hit is a birth certificate service",
            top.name_en,
        )
        checks.check(len(top.read_out) == 5, "the hit carries its five read-out sentences")
        checks.check(len(hits) <= 5, "Search returns at most 5 hits by default", len(hits))
    checks.expect_code(
        search,
        search_request(query="birth certificate", locale="de"),
        grpc.StatusCode.INVALID_ARGUMENT,
        "Search in an unsupported locale is INVALID_ARGUMENT",
        timeout,
    )

    status_value = lambda name: reflected.enum_value(  # noqa: E731
        "ivr.v1.CaseStatus", f"CASE_STATUS_{name}"
    )
    get_request, get_case = reflected.method(CASE_SERVICE, "GetCase")
    number = re.sub(r"[ -]", "", args.case)
    grouped = f"{number[:3]} {number[3:6]} {number[6:]}"
    case = get_case(get_request(number=grouped), timeout=timeout)
    checks.check(case.number == number, "GetCase finds the case by its grouped number")
    checks.check(
        case.status == status_value("RECEIVED"), "the case is RECEIVED", case.status
    )
    checks.check(
        re.fullmatch(r"\d{4}-\d{2}-\d{2}", case.due_date) is not None,
        "due_date is YYYY-MM-DD",
        case.due_date,
    )
    checks.check(
        len(case.history) == 1 and case.history[0].at_unix == case.received_at_unix,
        "the history starts with the receipt",
        list(case.history),
    )

    # Another well-formed number (valid check digit) that was not issued.
    other = str(int(number[0]) % 9 + 1) + number[1:9]
    unknown = other + str(damm(other))
    checks.expect_code(
        get_case,
        get_request(number=unknown),
        grpc.StatusCode.NOT_FOUND,
        "GetCase of an unissued number is NOT_FOUND",
        timeout,
    )
    wrong_digit = number[:9] + str((int(number[9]) + 1) % 10)
    checks.expect_code(
        get_case,
        get_request(number=wrong_digit),
        grpc.StatusCode.INVALID_ARGUMENT,
        "GetCase with a wrong check digit is INVALID_ARGUMENT",
        timeout,
        message_part="check digit",
    )

    list_request, list_cases = reflected.method(CASE_SERVICE, "ListCases")
    cases = list_cases(list_request(), timeout=timeout).cases
    listed = [c.number for c in cases]
    print(f"cases: {' '.join(listed)}")
    if args.expect_cases is not None:
        checks.check(
            len(cases) == args.expect_cases,
            f"ListCases returns the {args.expect_cases} cases",
            listed,
        )
    checks.check(number in listed, "ListCases includes the case", listed)
    received = list_cases(
        list_request(status=status_value("RECEIVED"), limit=1), timeout=timeout
    ).cases
    checks.check(len(received) == 1, "ListCases honours status and limit", received)

    update_request, update_status = reflected.method(CASE_SERVICE, "UpdateStatus")
    forwarded = update_status(
        update_request(
            number=number,
            status=status_value("FORWARDED"),
            agency=args.agency,
            note="sent on",
        ),
        timeout=timeout,
    )
    checks.check(
        forwarded.status == status_value("FORWARDED"), "UpdateStatus forwards the case"
    )
    checks.check(
        args.agency in forwarded.history[-1].note,
        "the forwarding names the agency in the history",
        forwarded.history[-1].note,
    )

    answer_request, answer = reflected.method(CASE_SERVICE, "Answer")
    answered = answer(answer_request(number=number, answer=args.answer), timeout=timeout)
    checks.check(
        answered.status == status_value("ANSWERED") and answered.answer == args.answer,
        "Answer records the answer",
        f"{answered.status} {answered.answer!r}",
    )
    checks.check(not answered.overdue, "an answered case is not overdue")
    checks.expect_code(
        update_status,
        update_request(number=number, status=status_value("FORWARDED")),
        grpc.StatusCode.FAILED_PRECONDITION,
        "forwarding an answered case is FAILED_PRECONDITION",
        timeout,
    )
    return checks


def key_groups(keys):
    """The key groups of --keys: space-separated groups, or one group per key without spaces.

    Characters that are not keypad keys are dropped; groups left empty are skipped.
    """
    groups = keys.split() if any(c.isspace() for c in keys.strip()) else list(keys)
    groups = ["".join(k for k in group if k in "0123456789*#") for group in groups]
    return [group for group in groups if group]


def converse(args, channel):
    """Plays a call through MediaGateway.Converse: CallStart, then one key group per turn.

    Acts as a gateway that plays audio instantly: a mark is reported played out (PlayoutMark) as
    soon as its audio arrives. When the assistant starts listening the next group of keys is
    sent (keys may interrupt the prompt, as on a phone). After the last group the call is hung
    up. Prints the services reflection lists and every event that comes down.
    """
    checks = Checks()
    reflected = Reflected(channel)
    names = reflected.services()
    print(f"services: {' '.join(sorted(names))}")
    checks.check(MEDIA_GATEWAY in names, f"reflection lists {MEDIA_GATEWAY}", names)
    up_class, call = reflected.method(MEDIA_GATEWAY, "Converse")
    up = queue.Queue()

    def requests():
        while True:
            message = up.get()
            if message is None:
                return
            yield message

    start = up_class()
    start.start.call_id = args.call_id
    start.start.caller = args.caller
    start.start.called = args.called
    start.start.format.sample_rate_hz = 8000
    start.start.locale_hint = args.locale
    start.start.channel = reflected.enum_value("ivr.v1.Channel", "CHANNEL_OTHER")
    up.put(start)

    keys = key_groups(args.keys)
    played_marks = set()
    finishing = False
    hangup_timer = None
    prompts = listening = 0
    ended = None
    stream = call(requests(), timeout=args.timeout)
    try:
        for down in stream:
            kind = down.WhichOneof("msg")
            if kind == "audio":
                if down.audio.mark not in played_marks:
                    played_marks.add(down.audio.mark)
                    played = up_class()
                    played.playout.mark = down.audio.mark
                    up.put(played)
            elif kind == "clear":
                print(f"down: clear playout of mark {down.clear.mark}")
            elif kind == "transfer":
                print(f"down: transfer to {down.transfer.target}")
                ended = "transferred"
            elif kind == "hangup":
                print(f"down: hangup ({down.hangup.reason})")
                ended = "assistant hung up"
                break
            elif kind == "event":
                event = down.event
                which = event.WhichOneof("kind")
                if which == "prompt":
                    prompts += 1
                    print(f"down: prompt {event.prompt.prompt_id or '-'}: {event.prompt.text}")
                    if finishing and hangup_timer is None:
                        # The answer to the last keys has begun: take in what follows it
                        # (its audio, a transfer) for a moment, then hang up.
                        bye = up_class()
                        bye.hangup.reason = "caller done"
                        hangup_timer = threading.Timer(1.5, up.put, args=(bye,))
                        hangup_timer.start()
                        ended = "caller hung up"
                elif which == "heard":
                    heard = event.heard
                    print(
                        f"down: heard {heard.keys or heard.text!r} -> "
                        f"{heard.meaning or '-'} ({heard.decision}) in {heard.state}"
                    )
                elif which == "listening":
                    listening += 1
                    print(f"down: listening in {event.listening.state}")
                    if not keys:
                        # No more keys: wait for what the assistant says to the last ones.
                        finishing = True
                        continue
                    group = keys.pop(0)
                    for key in group:
                        dtmf = up_class()
                        dtmf.dtmf.key = key
                        dtmf.dtmf.duration_ms = 100
                        up.put(dtmf)
                    print(f"up: keys {group}")
    finally:
        up.put(None)
        stream.cancel()
    checks.check(prompts > 0, "the assistant spoke", prompts)
    checks.check(listening > 0, "the assistant listened", listening)
    checks.check(ended is not None, "the call ended", ended)
    return checks


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--target", required=True, help="host:port of the gRPC server")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per call")
    parser.add_argument("--case", help="a case number in status RECEIVED")
    parser.add_argument("--expect-cases", type=int, help="how many cases the registry holds")
    parser.add_argument("--agency", default="GASR", help="the agency to forward to")
    parser.add_argument("--answer", default="Your request was handled.", help="answer text")
    parser.add_argument("--converse", action="store_true", help="play a call instead")
    parser.add_argument(
        "--keys",
        default="",
        help="DTMF keys for --converse, one group per listening turn: '3 1234567894#', "
        "or one key per turn without spaces: '21#'",
    )
    parser.add_argument("--call-id", default="grpc-client-1")
    parser.add_argument("--caller", default="")
    parser.add_argument("--called", default="1111")
    parser.add_argument("--locale", default="en", help="locale hint for --converse")
    args = parser.parse_args()
    if not args.converse and not args.case:
        parser.error("--case is required unless --converse is given")

    with grpc.insecure_channel(args.target) as channel:
        try:
            grpc.channel_ready_future(channel).result(timeout=args.timeout)
            checks = converse(args, channel) if args.converse else check_services(args, channel)
        except grpc.FutureTimeoutError:
            print(f"FAIL: no connection to {args.target}")
            return 2
        except grpc.RpcError as error:
            print(f"FAIL: unexpected {error.code()}: {error.details()}")
            return 2
    print(f"{checks.passed} passed, {checks.failed} failed")
    return 0 if checks.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
