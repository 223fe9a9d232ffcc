#!/usr/bin/env bash
# Runs the caller scenarios of tests/sip against SIPp itself (uas.xml, uas_ringing.xml,
# SIPp's built-in uas) and baresip against uas.xml, to show the scenarios are right apart
# from the hotline. The media the callers send is caught on a UDP port and summed up per
# source, payload type and SSRC, with every RFC 4733 event end.
#
#   tests/sip/check/run.sh            (about 90 s; needs sipp, baresip, flite, sox, python3)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
sip=$(dirname "$here")
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
cd "$work"

uas_port=15090
sink=17000
media=17100

cp "$sip"/*.xml "$here"/uas*.xml .
cp /usr/share/sip-tester/dtmf_2833_{2,pound}.pcap .
flite -voice rms -t "The street light outside my house is broken." -o speech.wav
sox speech.wav -r 8000 -c 1 -t ul caller.ul pad 0.3 5 trim 0 5
sox speech.wav -r 8000 -c 1 -b 16 -e signed-integer caller.wav pad 1 10 trim 0 10

# The media sink: prints what it caught once nothing came for $1 seconds.
sink() {
  python3 - "$1" "$sink" <<'EOF'
import socket, struct, sys
quiet, port = float(sys.argv[1]), int(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", port))
s.settimeout(quiet)
streams, ends = {}, []
try:
    while True:
        d, src = s.recvfrom(2048)
        if len(d) < 12:
            continue
        pt = d[1] & 0x7F
        seq, ts, ssrc = struct.unpack(">HII", d[2:12])
        key = (src[1], pt, hex(ssrc))
        streams[key] = streams.get(key, 0) + 1
        if pt == 101 and len(d) >= 16 and d[13] & 0x80 and (ts, d[12]) not in ends:
            ends.append((ts, d[12]))
except socket.timeout:
    pass
for (port, pt, ssrc), n in sorted(streams.items()):
    print(f"media: from port {port} pt {pt} ssrc {ssrc}: {n} packets")
print("rfc4733 events:", " ".join("0123456789*#ABCD"[e] for _, e in ends))
EOF
}

uas() { # SCENARIO-ARGS...
  sipp "$@" -i 127.0.0.1 -p $uas_port -m 1 -nostdin -trace_err -key media_sink $sink \
    >uas.out 2>&1 &
  pids+=($!)
}

uac() { # NAME SIPP-ARGS...
  local name=$1
  shift
  if sipp "$@" -i 127.0.0.1 -s 1111 -mp $media -m 1 -nostdin -trace_err -trace_msg \
    -timeout 90s -timeout_error 127.0.0.1:$uas_port >uac.out 2>&1; then
    echo "$name: passed"
  else
    echo "$name: FAILED ($?)"
    tail -40 uac.out
    cat ./*errors.log 2>/dev/null || true
    return 1
  fi
}

uas -sf uas_ringing.xml
uac cancel -sf cancel.xml
wait "${pids[-1]}"

uas -sf uas.xml
uac bye_mid_prompt -sf bye_mid_prompt.xml
wait "${pids[-1]}"

sink 25 >sink.out &
pids+=($!)
uas -sf uas.xml
uac call_keys -sf call_keys.xml
grep -h '^Signal=' call_keys_*_messages.log | tr '\n' ' '
echo
wait "${pids[-2]}"
cat sink.out

sipp -sn uas -i 127.0.0.1 -p $uas_port -nostdin >uas.out 2>&1 &
pids+=($!)
if sipp -sn uac -i 127.0.0.1 -s 1111 -r 20 -m 600 -d 1000 -l 200 -nostdin \
  -timeout 60s -timeout_error 127.0.0.1:$uas_port >uac.out 2>&1; then
  echo "uac 20 cps x 600: passed"
else
  echo "uac 20 cps x 600: FAILED"
  grep -E "Successful call|Failed call" uac.out | tail -2
fi
kill "${pids[-1]}"

# baresip: dial, three keys, hang up, over ctrl_tcp (netstrings of JSON).
mkdir bs
cat >bs/config <<EOF
poll_method		epoll
sip_listen		127.0.0.1:15070
sip_transports		udp
net_interface		127.0.0.1
audio_source		aufile,$work/caller.wav
module_path		/usr/lib/baresip/modules
module			g711.so
module			aufile.so
module			ctrl_tcp.so
module_app		account.so
module_app		menu.so
ctrl_tcp_listen		127.0.0.1:14444
EOF
echo '<sip:99112233@127.0.0.1>;regint=0' >bs/accounts
: >bs/contacts
sink 5 >sink.out &
pids+=($!)
uas -sf uas.xml
python3 - <<'EOF'
import json, socket, subprocess, time
# baresip opens its control port once its modules are loaded: try to connect, waiting on
# baresip itself (its exit ends the wait) between tries, for at most 5 s.
baresip = subprocess.Popen(["baresip", "-f", "bs", "-t", "30"],
                           stdout=open("baresip.out", "w"), stderr=subprocess.STDOUT)
deadline = time.monotonic() + 5
while True:
    try:
        s = socket.create_connection(("127.0.0.1", 14444))
        break
    except OSError:
        try:
            baresip.wait(timeout=0.1)
            raise SystemExit("baresip exited (see baresip.out)")
        except subprocess.TimeoutExpired:
            pass
        if time.monotonic() > deadline:
            baresip.kill()
            raise SystemExit("baresip's ctrl_tcp did not open (see baresip.out)")
s.settimeout(0.2)
buf = b""
def send(cmd, params=""):
    b = json.dumps({"command": cmd, "params": params, "token": cmd}).encode()
    s.sendall(str(len(b)).encode() + b":" + b + b",")
def pump(t):
    global buf
    end = time.time() + t
    while time.time() < end:
        try:
            buf += s.recv(4096)
        except socket.timeout:
            pass
        while b":" in buf:
            n, rest = buf.split(b":", 1)
            if len(rest) < int(n) + 1:
                break
            msg = json.loads(rest[: int(n)])
            if msg.get("event"):
                print("baresip event:", msg["type"], msg.get("param", ""))
            buf = rest[int(n) + 1 :]
send("dial", "sip:1111@127.0.0.1:15090"); pump(2)
for k in "28#":
    send("sndcode", k); pump(0.5)
send("hangup"); pump(1)
send("quit"); pump(1)
try:
    baresip.wait(timeout=5)
except subprocess.TimeoutExpired:
    baresip.kill()
EOF
wait "${pids[-2]}" # the media sink
cat sink.out
grep -E "Call established|terminated|error" baresip.out || true
