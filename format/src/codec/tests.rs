//! Tests of the codec: round trips, the window decoder against the checked one, the
//! encoder near a chunk's end, damaged input.

use super::*;
use crate::event::Segment;

/// Values around every varint length boundary, and the extremes.
fn boundary_values() -> Vec<u64> {
    let mut values = vec![0, 1, u64::MAX, u64::MAX - 1];
    for bits in (7..64).step_by(7).chain([28, 56]) {
        let edge = 1u64 << bits;
        values.extend([edge - 1, edge, edge + 1, edge | (edge >> 1)]);
    }
    values
}

#[test]
fn scratch_varints_match_the_plain_encoder_at_every_window_position() {
    for value in boundary_values() {
        let mut expected = [0u8; 10];
        let mut expected_len = 0;
        varint::put(&mut expected, &mut expected_len, value).expect("ten bytes hold any u64");
        for start in 1..=MAX_HOT_EVENT_LEN - expected_len {
            let mut window = [0u8; HOT_WINDOW_LEN];
            let mut scratch = Scratch { buf: &mut window, len: start };
            scratch.varint(value);
            assert_eq!(scratch.len, start + expected_len, "length of {value:#x} at {start}");
            assert_eq!(
                &window[start..start + expected_len],
                &expected[..expected_len],
                "{value:#x} at {start}"
            );
            assert!(
                window[start + expected_len..].iter().all(|&b| b == 0),
                "bytes past {value:#x} at {start}"
            );
        }
    }
}

#[test]
fn a_hot_event_near_the_end_encodes_as_in_open_room_or_not_at_all() {
    let events = [
        Event::Alloc { ts: 1 << 40, addr: 0x7f00_dead_beef, size: u64::MAX, align: 1 << 60, stack: 7 },
        Event::Realloc {
            ts_free: u64::MAX,
            ts: u64::MAX,
            old_addr: 0x1234_5678_9abc_def1,
            new_addr: 3,
            size: u64::MAX,
            stack: u32::MAX,
        },
        Event::Free { ts: 5, addr: 0x10 },
    ];
    for event in &events {
        let mut open_state = DeltaState::new(0);
        let mut open = [0u8; 256];
        let len = encode_event(&mut open_state, event, &mut open).expect("room for any event");
        assert!(len > 1, "{event:?} encoded to {len} bytes");
        for room in 0..HOT_WINDOW_LEN + 2 {
            let mut state = DeltaState::new(0);
            let mut out = vec![0u8; room];
            match encode_event(&mut state, event, &mut out) {
                Some(n) => {
                    assert_eq!(&out[..n], &open[..len], "{event:?} in {room} bytes");
                    assert_eq!(state, open_state, "{event:?} in {room} bytes");
                }
                None => {
                    assert!(room < len, "{event:?} refused {room} bytes");
                    assert_eq!(state, DeltaState::new(0), "{event:?} in {room} bytes");
                }
            }
        }
    }
}

#[test]
fn ring_search_finds_the_first_slot_holding_the_address() {
    let mut ring = [0u64; RING_LEN];
    for (slot, held) in ring.iter_mut().enumerate().take(RECENT_SLOTS) {
        // Pairs of slots share an address; some differ from others only in one 32-bit half.
        *held = 0x7f00_0000_0000 + (slot as u64 / 2) * 0x1_0000_0010;
    }
    for (slot, &held) in ring.iter().enumerate().take(RECENT_SLOTS) {
        let first = ring.iter().position(|&a| a == held);
        assert_eq!(ring_position(&ring, held), first, "slot {slot}");
    }
    for absent in [1, 0x7f00_0000_0010, 0x7f01_0000_0000, u64::MAX] {
        assert_eq!(ring_position(&ring, absent), None, "{absent:#x}");
    }
}

fn round_trip(events: &[Event<'_>]) -> Vec<u8> {
    let mut enc = DeltaState::new(1000);
    let mut buf = vec![0u8; 4096];
    let mut len = 0;
    for e in events {
        len += encode_event(&mut enc, e, &mut buf[len..]).expect("fits");
    }
    buf.truncate(len);
    let mut dec = DeltaState::new(1000);
    let mut pos = 0;
    for e in events {
        let got = decode_event(&mut dec, &buf, &mut pos).expect("decodes").expect("known kind");
        assert_eq!(&got, e);
    }
    assert_eq!(pos, buf.len());
    assert_eq!(enc, dec);
    buf
}

#[test]
fn every_kind_round_trips() {
    let segs = [Segment { vaddr: 0, memsz: 4096, flags: 5 }, Segment { vaddr: 8192, memsz: 100, flags: 6 }];
    round_trip(&[
        Event::StackNode { id: 1, parent: 0, ip: 0x5555_0000_1234 },
        Event::StackNode { id: 2, parent: 1, ip: 0x5555_0000_1000 },
        Event::Alloc { ts: 1010, addr: 0x5555_6000_0010, size: 24, align: 0, stack: 2 },
        Event::Alloc { ts: 1020, addr: 0x5555_6000_0041, size: 0, align: 64, stack: 2 },
        Event::Free { ts: 1030, addr: 0x5555_6000_0010 },
        Event::Free { ts: 1031, addr: 0x7fff_0000_0000 },
        Event::Realloc { ts_free: 1040, ts: 1045, old_addr: 0x10, new_addr: 0x10, size: 9, stack: 1 },
        Event::Realloc { ts_free: 1050, ts: 1055, old_addr: 0x10, new_addr: 0x9999, size: 90, stack: 1 },
        Event::ModuleLoad {
            ts: 1060,
            id: 3,
            base: 0x7f00_0000_0000,
            path: b"/usr/lib/libc.so.6",
            build_id: &[1, 2, 3, 4],
            segments: Segments::Slice(&segs),
        },
        Event::ModuleUnload { ts: 1070, id: 3 },
        Event::ThreadName { ts: 1080, tid: 42, name: b"worker" },
        Event::Mark { ts: 1090, label: b"warmup done" },
        Event::ResidentMemory { ts: 1100, bytes: 0 },
        Event::ResidentMemory { ts: 1100, bytes: 37 << 20 },
        Event::ResidentMemory { ts: 1110, bytes: u64::MAX },
        Event::ScanRegion { ts: 1120, start: 0x5555_0000_0000, len: 1 << 20, kind: 3 },
        Event::References {
            ts: 1120,
            refs: References::Slice(&[
                (0x5555_0000_0010, 0x5555_0000_2000),
                (0x5555_0000_0018, 8),
                (u64::MAX, 0),
            ]),
        },
        Event::References { ts: 1121, refs: References::Slice(&[]) },
        Event::ScanEnd { ts: 1130, regions: 12, bytes: 40 << 20, references: 3 },
    ]);
}

#[test]
fn free_of_recent_block_costs_two_bytes() {
    let alloc = Event::Alloc { ts: 1001, addr: 0x5555_6000_0010, size: 24, align: 0, stack: 0 };
    let alloc_len = round_trip(&[alloc]).len();
    let both = round_trip(&[alloc, Event::Free { ts: 1002, addr: 0x5555_6000_0010 }]);
    assert_eq!(both.len() - alloc_len, 2, "{both:02x?}");
}

#[test]
fn alloc_of_a_just_freed_address_needs_no_address_bytes() {
    let a = 0x5555_6000_0010;
    let first =
        [Event::Alloc { ts: 1001, addr: a, size: 24, align: 0, stack: 3 }, Event::Free { ts: 1002, addr: a }];
    let base = round_trip(&first).len();
    let mut again = first.to_vec();
    again.push(Event::Alloc { ts: 1003, addr: a, size: 24, align: 0, stack: 3 });
    let buf = round_trip(&again);
    assert_eq!(buf.len() - base, 3, "tag, time delta and size only: {buf:02x?}");
    assert_eq!(buf[base] & KIND_MASK, KIND_ALLOC_REUSED);
    // A second reuse of the same slot must not hit: the address is live again.
    again.push(Event::Alloc { ts: 1004, addr: a, size: 8, align: 0, stack: 3 });
    let buf = round_trip(&again);
    assert_eq!(buf[base + 3] & KIND_MASK, KIND_ALLOC_PACKED);
}

#[test]
fn sizes_round_trip_with_their_low_bits_in_the_tag() {
    let mut sizes: Vec<u64> = (0..=600).collect();
    sizes.extend(boundary_values());
    let events: Vec<Event<'_>> = sizes
        .iter()
        .enumerate()
        .map(|(i, &size)| Event::Alloc {
            ts: 1000 + i as u64,
            addr: 0x10 * (i as u64 + 1),
            size,
            align: 0,
            stack: 1,
        })
        .collect();
    round_trip(&events);
    // Sizes below 512 take one byte: the alloc is as long with size 511 as with size 1.
    let alone = |size| {
        round_trip(&[Event::Alloc { ts: 1001, addr: 0x5555_6000_0010, size, align: 0, stack: 0 }]).len()
    };
    assert_eq!(alone(511), alone(1));
    assert_eq!(alone(512), alone(1) + 1);
}

#[test]
fn format_1_allocs_still_decode() {
    // Kind 1: tag, dt 5, zz(addr delta / 16) of 0x100 → 0x20 then 0x40, size 300 as a plain
    // varint, zz(stack delta 2) = 4.
    let input = [KIND_ALLOC, 5, 0x40, 0xac, 0x02, 4];
    let mut pos = 0;
    let got = decode_event(&mut DeltaState::new(1000), &input, &mut pos).expect("decodes");
    assert_eq!(got, Some(Event::Alloc { ts: 1005, addr: 0x200, size: 300, align: 0, stack: 2 }));
    assert_eq!(pos, input.len());
}

#[test]
fn a_packed_size_past_u64_is_an_error() {
    let too_big = [KIND_ALLOC_PACKED, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0];
    let got = decode_event(&mut DeltaState::new(0), &too_big, &mut 0);
    assert_eq!(got, Err(DecodeError::BadValue("size")));
}

#[test]
fn earlier_timestamps_are_clamped() {
    let mut enc = DeltaState::new(1000);
    let mut buf = [0u8; 64];
    let n = encode_event(&mut enc, &Event::Free { ts: 10, addr: 0x20 }, &mut buf).expect("fits");
    let mut dec = DeltaState::new(1000);
    let got = decode_event(&mut dec, &buf[..n], &mut 0).expect("ok").expect("known");
    assert_eq!(got, Event::Free { ts: 1000, addr: 0x20 });
}

#[test]
fn failed_encode_leaves_state_untouched() {
    let mut enc = DeltaState::new(0);
    let before = enc.clone();
    let mut tiny = [0u8; 3];
    let e = Event::Alloc { ts: 99_999, addr: 0x7fff_ffff_0000, size: 1 << 40, align: 0, stack: 7 };
    assert_eq!(encode_event(&mut enc, &e, &mut tiny), None);
    assert_eq!(enc, before);
}

#[test]
fn unknown_meta_subkind_is_skipped() {
    let input = [KIND_META | (17 << META_SHIFT), 5, 2, 0xaa, 0xbb];
    let mut pos = 0;
    let got = decode_event(&mut DeltaState::new(0), &input, &mut pos).expect("skips");
    assert_eq!(got, None);
    assert_eq!(pos, input.len());
}

/// An event decoded (cold kinds as a placeholder), its length and the state after it.
type Outcome = Result<(Option<Event<'static>>, usize, DeltaState), DecodeError>;

/// `e` without its borrow: the hot kinds as they are, any other kind as one placeholder.
fn hot_copy(e: Event<'_>) -> Event<'static> {
    match e {
        Event::Alloc { ts, addr, size, align, stack } => Event::Alloc { ts, addr, size, align, stack },
        Event::Free { ts, addr } => Event::Free { ts, addr },
        Event::Realloc { ts_free, ts, old_addr, new_addr, size, stack } => {
            Event::Realloc { ts_free, ts, old_addr, new_addr, size, stack }
        }
        _ => Event::Mark { ts: 0, label: b"cold" },
    }
}

/// Decodes the event at the start of `bytes` both ways: with every read checked, and from a
/// window (`None` if it is not a hot event).
fn both_ways(state: &DeltaState, bytes: &varint::Window) -> (Outcome, Option<Outcome>) {
    let mut checked_state = state.clone();
    let mut got = None;
    let mut pos = 0;
    let checked = decode_with(
        &mut checked_state,
        bytes,
        &mut pos,
        &mut Deliver(|e: Event<'_>| got = Some(hot_copy(e))),
    )
    .map(|()| (got, pos, checked_state));
    let mut window_state = state.clone();
    let mut got = None;
    let windowed =
        decode_hot_in_window(&mut window_state, bytes, &mut Deliver(|e: Event<'_>| got = Some(hot_copy(e))))
            .transpose()
            .map(|r| r.map(|len| (got, len, window_state)));
    (checked, windowed)
}

#[test]
fn window_and_checked_decoding_agree_on_any_bytes() {
    let mut rng = crate::testing::XorShift::new(0x5eed);
    let (mut hot, mut errors, mut long) = (0, 0, 0);
    for round in 0..200_000u32 {
        let mut state = DeltaState::new(rng.next_u64() >> rng.below(64));
        state.prev_addr = rng.next_u64() >> rng.below(64);
        state.prev_stack = (rng.next_u64() >> rng.below(64)) as u32;
        for slot in 0..RECENT_SLOTS {
            // Some slots empty (0), as at the start of a chunk.
            state.recent[slot] = if rng.below(4) == 0 { 0 } else { rng.next_u64() };
            state.freed[slot] = if rng.below(4) == 0 { 0 } else { rng.next_u64() };
        }
        state.recent_next = rng.below(RECENT_SLOTS as u64) as u8;
        state.freed_next = rng.below(RECENT_SLOTS as u64) as u8;
        let mut bytes = [0u8; varint::WINDOW_LEN];
        for b in bytes.iter_mut() {
            // Bytes with the continuation bit often, so long and overlong varints come up.
            *b = match rng.below(4) {
                0 => 0xff,
                1 => rng.next_u64() as u8 | 0x80,
                _ => rng.next_u64() as u8,
            };
        }
        if round % 2 == 0 {
            // Mostly short fields, as real events have.
            for b in bytes.iter_mut().skip(1) {
                if rng.below(3) != 0 {
                    *b &= 0x7f;
                }
            }
        }
        let (checked, windowed) = both_ways(&state, &bytes);
        let Some(windowed) = windowed else {
            assert!(!is_hot(bytes[0]));
            continue;
        };
        hot += 1;
        errors += u32::from(checked.is_err());
        long += u32::from(checked.as_ref().is_ok_and(|(_, len, _)| *len > 20));
        assert_eq!(checked, windowed, "tag {:#04x}, bytes {bytes:02x?}", bytes[0]);
    }
    // Both outcomes came up often, and events with long fields too.
    assert!(
        hot > 100_000 && errors > 10_000 && hot - errors > 10_000 && long > 1_000,
        "{hot} {errors} {long}"
    );
}

#[test]
fn garbage_is_an_error_not_a_panic() {
    for tag in [0u8, 0xff, KIND_ALLOC | 0xc0, KIND_ALLOC_REUSED, KIND_ALLOC_PACKED] {
        let input = [tag, 0xff, 0xff];
        assert!(decode_event(&mut DeltaState::new(0), &input, &mut 0).is_err(), "tag {tag:#x}");
    }
    let free_from_empty_slot = [KIND_FREE | (3 << FREE_RECENT_SHIFT), 0];
    assert!(decode_event(&mut DeltaState::new(0), &free_from_empty_slot, &mut 0).is_err());
}

#[test]
fn resident_memory_with_fields_of_a_later_minor_still_decodes() {
    // Sub-kind 4, dt 5, a payload of 4 bytes: the size (300 as a varint) and two more bytes.
    let input = [KIND_META | (4 << META_SHIFT), 5, 4, 0xac, 0x02, 0x07, 0x08];
    let mut pos = 0;
    let got = decode_event(&mut DeltaState::new(10), &input, &mut pos).expect("decodes");
    assert_eq!(got, Some(Event::ResidentMemory { ts: 15, bytes: 300 }));
    assert_eq!(pos, input.len());
}

#[test]
fn references_cost_the_deltas_of_their_locations_and_values() {
    // Two words 8 bytes apart pointing 64 bytes apart: a location delta and a value delta of one
    // byte each after the first pair.
    let one = [(0x7f00_0000_1000u64, 0x5555_0000_2000u64)];
    let two = [(0x7f00_0000_1000u64, 0x5555_0000_2000u64), (0x7f00_0000_1008, 0x5555_0000_2040)];
    let len = |refs: &[(u64, u64)]| {
        round_trip(&[Event::References { ts: 1001, refs: References::Slice(refs) }]).len()
    };
    assert_eq!(len(&two) - len(&one), 1 + 2, "8 is one byte; zigzag(64) = 128 takes two");
}

#[test]
fn a_references_event_cut_short_is_an_error() {
    let refs = [(0x1000u64, 0x2000u64), (0x1008, 0x2008)];
    let encoded = round_trip(&[Event::References { ts: 1005, refs: References::Slice(&refs) }]);
    // Claim one pair more than the payload holds: the payload length stays, so the count lies.
    let mut lying = encoded.clone();
    lying[3] = 3;
    assert!(decode_event(&mut DeltaState::new(0), &lying, &mut 0).is_err(), "{lying:02x?}");
}
