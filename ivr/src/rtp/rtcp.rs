//! RTCP (RFC 3550 §6): sender and receiver reports, SDES CNAME and BYE, parsed and built; and
//! the rtcp-mux test that tells RTCP from RTP on one port (RFC 5761 §4).
//!
//! [`parse_compound`] walks a compound packet (§6.1) and returns each packet it holds;
//! packet types other than SR, RR, SDES and BYE come back as [`RtcpPacket::Other`] (APP,
//! feedback, XR: we neither need nor send them). SDES items other than CNAME are skipped.
//! Padding (the P bit on the last packet) is honoured. [`write_compound`] prints packets
//! back to back without padding. Malformed input gives an [`Error`], never a panic.
//!
//! These packets are small and few (one compound every ~5 s per call), so they are built by
//! hand here rather than through a general RTCP crate: the four packet types we use are a
//! page of code, fuzzed with the RTP header (`fuzz/fuzz_targets/rtp_packet.rs`).
//!
//! ```
//! use ivr::rtp::{rtcp::{self, RtcpPacket}, Ssrc};
//! let rr = RtcpPacket::ReceiverReport { ssrc: Ssrc(1), reports: vec![] };
//! let bye = RtcpPacket::Bye { sources: vec![Ssrc(1)], reason: Some("hangup".into()) };
//! let mut wire = Vec::new();
//! rtcp::write_compound(&[rr.clone(), bye.clone()], &mut wire);
//! assert!(rtcp::is_rtcp(&wire));
//! assert_eq!(rtcp::parse_compound(&wire).unwrap(), vec![rr, bye]);
//! ```

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{Error, Ssrc};

/// RTCP packet type: sender report.
pub const PT_SR: u8 = 200;
/// RTCP packet type: receiver report.
pub const PT_RR: u8 = 201;
/// RTCP packet type: source description.
pub const PT_SDES: u8 = 202;
/// RTCP packet type: goodbye.
pub const PT_BYE: u8 = 203;

const SDES_CNAME: u8 = 1;
const REPORT_BLOCK_LEN: usize = 24;

/// Whether a datagram on an rtcp-mux port is RTCP rather than RTP (RFC 5761 §4): version 2
/// and a second octet in 192..=223, the range where RTCP packet types (SR 200, RR 201, SDES
/// 202, BYE 203, APP 204, feedback 205/206, XR 207) fall and RTP payload types must not
/// (with the marker bit they would read as types 64–95, which RFC 5761 reserves).
pub fn is_rtcp(datagram: &[u8]) -> bool {
    matches!(datagram, [first, second, ..] if first >> 6 == 2 && (192..=223).contains(second))
}

/// A 64-bit NTP timestamp (RFC 3550 §4): seconds since 1900 in the high 32 bits, the
/// fraction in the low 32.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct NtpTime(pub u64);

impl NtpTime {
    /// Seconds from 1900-01-01 (NTP era 0) to 1970-01-01.
    const UNIX_OFFSET: u64 = 2_208_988_800;

    /// The NTP time of a wall-clock reading (the caller reads the clock; times before 1970
    /// read as 1970).
    pub fn from_system_time(t: SystemTime) -> Self {
        let since = t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
        let secs = since.as_secs().wrapping_add(Self::UNIX_OFFSET);
        let frac = (u64::from(since.subsec_nanos()) << 32) / 1_000_000_000;
        NtpTime(secs << 32 | frac)
    }

    /// The middle 32 bits, as carried in the LSR field of a report block (§6.4.1).
    pub fn compact(self) -> u32 {
        (self.0 >> 16) as u32
    }
}

/// The sender information of an SR (§6.4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct SenderInfo {
    /// Wall-clock time when the report was sent.
    pub ntp: NtpTime,
    /// The RTP timestamp corresponding to `ntp`.
    pub rtp_timestamp: u32,
    /// Packets sent since the sender started (wraps).
    pub packet_count: u32,
    /// Payload octets sent since the sender started (wraps).
    pub octet_count: u32,
}

/// One report block of an SR or RR (§6.4.1): reception statistics about one source.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ReportBlock {
    /// The source reported on.
    pub ssrc: Ssrc,
    /// Packets lost since the previous report, as a fixed-point fraction of 256.
    pub fraction_lost: u8,
    /// Packets lost since reception began (24-bit signed on the wire: duplicates can make
    /// it negative; clamped to ±2^23 when written).
    pub cumulative_lost: i32,
    /// Extended highest sequence number received (cycles in the high 16 bits).
    pub highest_sequence: u32,
    /// Interarrival jitter, in RTP timestamp units.
    pub jitter: u32,
    /// The middle 32 bits of the NTP time of the last SR from that source (0: none yet).
    pub last_sr: u32,
    /// Delay since that SR, in units of 1/65536 s.
    pub delay_since_last_sr: u32,
}

/// One RTCP packet of a compound packet.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RtcpPacket {
    /// SR (§6.4.1).
    SenderReport {
        /// The sender.
        ssrc: Ssrc,
        /// Its transmission statistics.
        info: SenderInfo,
        /// Its reception statistics (at most 31 blocks are written).
        reports: Vec<ReportBlock>,
    },
    /// RR (§6.4.2).
    ReceiverReport {
        /// The reporter.
        ssrc: Ssrc,
        /// Its reception statistics (at most 31 blocks are written).
        reports: Vec<ReportBlock>,
    },
    /// SDES (§6.5), CNAME items only: one `(source, cname)` per chunk that has one.
    SourceDescription {
        /// Each source and its canonical name.
        chunks: Vec<(Ssrc, String)>,
    },
    /// BYE (§6.6).
    Bye {
        /// The sources leaving.
        sources: Vec<Ssrc>,
        /// Why, if said.
        reason: Option<String>,
    },
    /// Any other packet type (APP, feedback, XR...), not interpreted.
    Other {
        /// Its packet type.
        packet_type: u8,
    },
}

/// Parses a compound RTCP packet into its packets.
pub fn parse_compound(buf: &[u8]) -> Result<Vec<RtcpPacket>, Error> {
    let mut packets = Vec::new();
    let mut rest = buf;
    while !rest.is_empty() {
        let [first, pt, l0, l1, ..] = rest else {
            return Err(truncated("RTCP header", 4, rest.len()));
        };
        if first >> 6 != 2 {
            return Err(Error::Version(first >> 6));
        }
        let len = (usize::from(u16::from_be_bytes([*l0, *l1])) + 1) * 4;
        let packet = rest
            .get(..len)
            .ok_or_else(|| truncated("RTCP packet", len, rest.len()))?;
        let mut body = &packet[4..];
        if first & 0x20 != 0 {
            // Padding: only legal on the last packet of the compound (§6.4.1 "padding").
            if len != rest.len() {
                return Err(Error::Malformed("RTCP padding before the last packet"));
            }
            let pad = usize::from(packet[len - 1]);
            if pad == 0 || pad > body.len() {
                return Err(Error::Malformed("RTCP padding count"));
            }
            body = &body[..body.len() - pad];
        }
        packets.push(parse_one(first & 0x1F, *pt, body)?);
        rest = &rest[len..];
    }
    if packets.is_empty() {
        return Err(truncated("RTCP header", 4, 0));
    }
    Ok(packets)
}

/// Appends the packets to `out` as one compound packet.
pub fn write_compound(packets: &[RtcpPacket], out: &mut Vec<u8>) {
    for p in packets {
        let start = out.len();
        match p {
            RtcpPacket::SenderReport {
                ssrc,
                info,
                reports,
            } => {
                let reports = &reports[..reports.len().min(31)];
                header(out, reports.len(), PT_SR);
                out.extend_from_slice(&ssrc.0.to_be_bytes());
                out.extend_from_slice(&info.ntp.0.to_be_bytes());
                for v in [info.rtp_timestamp, info.packet_count, info.octet_count] {
                    out.extend_from_slice(&v.to_be_bytes());
                }
                reports.iter().for_each(|r| write_block(r, out));
            }
            RtcpPacket::ReceiverReport { ssrc, reports } => {
                let reports = &reports[..reports.len().min(31)];
                header(out, reports.len(), PT_RR);
                out.extend_from_slice(&ssrc.0.to_be_bytes());
                reports.iter().for_each(|r| write_block(r, out));
            }
            RtcpPacket::SourceDescription { chunks } => {
                let chunks = &chunks[..chunks.len().min(31)];
                header(out, chunks.len(), PT_SDES);
                for (ssrc, cname) in chunks {
                    out.extend_from_slice(&ssrc.0.to_be_bytes());
                    let text = truncate_utf8(cname, 255);
                    out.push(SDES_CNAME);
                    out.push(text.len() as u8);
                    out.extend_from_slice(text.as_bytes());
                    // End of items (a zero octet), then zeros to the next word boundary.
                    out.push(0);
                    pad_to_word(out);
                }
            }
            RtcpPacket::Bye { sources, reason } => {
                let sources = &sources[..sources.len().min(31)];
                header(out, sources.len(), PT_BYE);
                sources
                    .iter()
                    .for_each(|s| out.extend_from_slice(&s.0.to_be_bytes()));
                if let Some(reason) = reason {
                    let text = truncate_utf8(reason, 255);
                    out.push(text.len() as u8);
                    out.extend_from_slice(text.as_bytes());
                    pad_to_word(out);
                }
            }
            // Nothing of ours to say in a packet we do not understand.
            RtcpPacket::Other { .. } => continue,
        }
        let words = (out.len() - start) / 4 - 1;
        out[start + 2..start + 4].copy_from_slice(&(words as u16).to_be_bytes());
    }
}

fn parse_one(count: u8, pt: u8, body: &[u8]) -> Result<RtcpPacket, Error> {
    let count = usize::from(count);
    match pt {
        PT_SR => {
            let fixed = body
                .get(..24)
                .ok_or_else(|| truncated("SR sender info", 28, body.len() + 4))?;
            let ssrc = Ssrc(word(fixed, 0));
            let info = SenderInfo {
                ntp: NtpTime(u64::from(word(fixed, 4)) << 32 | u64::from(word(fixed, 8))),
                rtp_timestamp: word(fixed, 12),
                packet_count: word(fixed, 16),
                octet_count: word(fixed, 20),
            };
            let reports = parse_blocks(&body[24..], count)?;
            Ok(RtcpPacket::SenderReport {
                ssrc,
                info,
                reports,
            })
        }
        PT_RR => {
            let fixed = body
                .get(..4)
                .ok_or_else(|| truncated("RR", 8, body.len() + 4))?;
            let reports = parse_blocks(&body[4..], count)?;
            Ok(RtcpPacket::ReceiverReport {
                ssrc: Ssrc(word(fixed, 0)),
                reports,
            })
        }
        PT_SDES => parse_sdes(body, count),
        PT_BYE => {
            let end = 4 * count;
            let ids = body
                .get(..end)
                .ok_or_else(|| truncated("BYE sources", end + 4, body.len() + 4))?;
            let sources = ids.chunks_exact(4).map(|w| Ssrc(word(w, 0))).collect();
            let reason = match body.get(end) {
                None => None,
                Some(&n) => {
                    let text = body.get(end + 1..end + 1 + usize::from(n)).ok_or_else(|| {
                        truncated("BYE reason", end + 1 + usize::from(n), body.len())
                    })?;
                    Some(String::from_utf8_lossy(text).into_owned())
                }
            };
            Ok(RtcpPacket::Bye { sources, reason })
        }
        packet_type => Ok(RtcpPacket::Other { packet_type }),
    }
}

fn parse_blocks(body: &[u8], count: usize) -> Result<Vec<ReportBlock>, Error> {
    let need = count * REPORT_BLOCK_LEN;
    let blocks = body
        .get(..need)
        .ok_or_else(|| truncated("report blocks", need, body.len()))?;
    Ok(blocks
        .chunks_exact(REPORT_BLOCK_LEN)
        .map(|b| {
            let lost = word(b, 4);
            // 24-bit two's complement: shift it to the top, then arithmetic-shift back.
            let cumulative_lost = ((lost << 8) as i32) >> 8;
            ReportBlock {
                ssrc: Ssrc(word(b, 0)),
                fraction_lost: (lost >> 24) as u8,
                cumulative_lost,
                highest_sequence: word(b, 8),
                jitter: word(b, 12),
                last_sr: word(b, 16),
                delay_since_last_sr: word(b, 20),
            }
        })
        .collect())
}

fn parse_sdes(body: &[u8], count: usize) -> Result<RtcpPacket, Error> {
    let mut chunks = Vec::new();
    let mut pos = 0;
    for _ in 0..count {
        let id = body
            .get(pos..pos + 4)
            .ok_or_else(|| truncated("SDES chunk", pos + 4, body.len()))?;
        let ssrc = Ssrc(word(id, 0));
        pos += 4;
        let mut cname = None;
        loop {
            match body.get(pos) {
                None => return Err(truncated("SDES items", pos + 1, body.len())),
                Some(0) => break,
                Some(&kind) => {
                    let n = usize::from(
                        *body
                            .get(pos + 1)
                            .ok_or_else(|| truncated("SDES item", pos + 2, body.len()))?,
                    );
                    let text = body
                        .get(pos + 2..pos + 2 + n)
                        .ok_or_else(|| truncated("SDES item", pos + 2 + n, body.len()))?;
                    if kind == SDES_CNAME {
                        cname = Some(String::from_utf8_lossy(text).into_owned());
                    }
                    pos += 2 + n;
                }
            }
        }
        // The terminating zero, then padding to the next word boundary.
        pos = (pos + 4) & !3;
        if let Some(cname) = cname {
            chunks.push((ssrc, cname));
        }
    }
    Ok(RtcpPacket::SourceDescription { chunks })
}

fn header(out: &mut Vec<u8>, count: usize, pt: u8) {
    // The length is filled in once the body is written.
    out.extend_from_slice(&[0x80 | count as u8, pt, 0, 0]);
}

fn write_block(r: &ReportBlock, out: &mut Vec<u8>) {
    let lost = r.cumulative_lost.clamp(-0x80_0000, 0x7F_FFFF) as u32 & 0x00FF_FFFF;
    for v in [
        r.ssrc.0,
        u32::from(r.fraction_lost) << 24 | lost,
        r.highest_sequence,
        r.jitter,
        r.last_sr,
        r.delay_since_last_sr,
    ] {
        out.extend_from_slice(&v.to_be_bytes());
    }
}

fn pad_to_word(out: &mut Vec<u8>) {
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
}

fn truncate_utf8(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The big-endian word at `at`; callers slice `b` to hold it.
fn word(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn truncated(what: &'static str, needed: usize, len: usize) -> Error {
    Error::Truncated { what, needed, len }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(ssrc: u32, lost: i32) -> ReportBlock {
        ReportBlock {
            ssrc: Ssrc(ssrc),
            fraction_lost: 25,
            cumulative_lost: lost,
            highest_sequence: 0x0001_0005,
            jitter: 80,
            last_sr: 0x1234_5678,
            delay_since_last_sr: 65536,
        }
    }

    fn round_trip(packets: &[RtcpPacket]) -> Vec<RtcpPacket> {
        let mut wire = Vec::new();
        write_compound(packets, &mut wire);
        assert_eq!(wire.len() % 4, 0);
        parse_compound(&wire).unwrap()
    }

    #[test]
    fn sender_report_with_blocks_round_trips() {
        let sr = RtcpPacket::SenderReport {
            ssrc: Ssrc(7),
            info: SenderInfo {
                ntp: NtpTime(0xE000_0000_8000_0000),
                rtp_timestamp: 1600,
                packet_count: 10,
                octet_count: 1600,
            },
            reports: vec![block(9, 3), block(10, -2)],
        };
        let sdes = RtcpPacket::SourceDescription {
            chunks: vec![(Ssrc(7), "gw@hotline".into())],
        };
        assert_eq!(round_trip(&[sr.clone(), sdes.clone()]), vec![sr, sdes]);
    }

    #[test]
    fn receiver_report_bye_and_cnames_of_every_length_round_trip() {
        for n in 0..8 {
            let cname: String = "x".repeat(n);
            let packets = vec![
                RtcpPacket::ReceiverReport {
                    ssrc: Ssrc(1),
                    reports: vec![block(2, 0x7F_FFFF)],
                },
                RtcpPacket::SourceDescription {
                    chunks: vec![(Ssrc(1), cname.clone()), (Ssrc(3), "b".into())],
                },
                RtcpPacket::Bye {
                    sources: vec![Ssrc(1)],
                    reason: Some(cname),
                },
            ];
            assert_eq!(round_trip(&packets), packets);
        }
    }

    #[test]
    fn cumulative_loss_beyond_24_bits_is_clamped() {
        let rr = RtcpPacket::ReceiverReport {
            ssrc: Ssrc(1),
            reports: vec![block(2, -9_000_000)],
        };
        let RtcpPacket::ReceiverReport { reports, .. } = &round_trip(&[rr])[0] else {
            panic!("not an RR");
        };
        assert_eq!(reports[0].cumulative_lost, -0x80_0000);
    }

    #[test]
    fn rtcp_is_told_from_rtp_on_a_muxed_port() {
        let mut rr = Vec::new();
        write_compound(
            &[RtcpPacket::ReceiverReport {
                ssrc: Ssrc(1),
                reports: vec![],
            }],
            &mut rr,
        );
        assert!(is_rtcp(&rr));
        // PCMU with and without the marker, telephone-event 101 with the marker.
        for second in [0x00, 0x80, 0x08, 0x80 | 101] {
            assert!(!is_rtcp(&[0x80, second, 0, 0]), "{second:#x}");
        }
        assert!(!is_rtcp(&[0x80]));
        assert!(!is_rtcp(&[0x00, 201]));
    }

    #[test]
    fn unknown_types_are_kept_as_other_and_padding_is_honoured() {
        // APP packet (204), then an RR with two octets of padding... padded to a word: 4.
        let mut wire = vec![0x80, 204, 0, 2, 0, 0, 0, 1, b'n', b'a', b'm', b'e'];
        wire.extend_from_slice(&[0xA0, 201, 0, 2, 0, 0, 0, 5, 0, 0, 0, 4]);
        let parsed = parse_compound(&wire).unwrap();
        assert_eq!(
            parsed,
            vec![
                RtcpPacket::Other { packet_type: 204 },
                RtcpPacket::ReceiverReport {
                    ssrc: Ssrc(5),
                    reports: vec![]
                }
            ]
        );
    }

    #[test]
    fn lengths_beyond_the_datagram_are_errors() {
        let mut wire = Vec::new();
        write_compound(
            &[RtcpPacket::ReceiverReport {
                ssrc: Ssrc(1),
                reports: vec![block(2, 1)],
            }],
            &mut wire,
        );
        for len in 0..wire.len() {
            assert!(parse_compound(&wire[..len]).is_err(), "prefix {len}");
        }
        // A report count larger than the packet holds.
        wire[0] = 0x82;
        assert!(parse_compound(&wire).is_err());
    }

    #[test]
    fn ntp_time_of_the_unix_epoch_and_its_compact_form() {
        let t = NtpTime::from_system_time(UNIX_EPOCH + Duration::from_millis(1500));
        assert_eq!(t.0 >> 32, 2_208_988_801);
        assert_eq!(t.0 & 0xFFFF_FFFF, 1 << 31);
        assert_eq!(
            t.compact(),
            ((2_208_988_801u64 & 0xFFFF) << 16 | 0x8000) as u32
        );
    }
}
