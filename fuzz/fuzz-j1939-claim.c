/* SPDX-License-Identifier: MIT */
/*
 * The J1939 address claim (plugins/can/can-j1939.c) on the network
 * management messages of a hostile bus: can_j1939_decide(), the part of
 * the claim that reads what other nodes send, with the driver's reaction
 * to its verdicts played here (a yield claims the address it names, none
 * left is Cannot Claim, a quiet 250 ms makes the claim good).
 *
 * Input: our NAME (8 bytes), the preferred address (0xff: none), a range
 * flag and its two ends (as the config allows them: a NAME other than 0,
 * lo <= hi <= 0xfd, an address or a range), then messages, each a kind byte
 * (Address Claimed, a Request, any other PGN, or the claim's 250 ms
 * running out), the source and destination addresses, a length and the
 * data. Besides the sanitizers, it checks that a yield happens only to a
 * lower NAME that claimed our address, that a claim is answered only for
 * a higher one, that the address yielded to is one the config allows and
 * no lower NAME holds, and that the record of who holds what never lists
 * our NAME or one NAME twice.
 */
#include <stdbool.h>
#include <stdint.h>

#include <linux/can/j1939.h>

#include "can-driver.h"
#include "fuzz-input.h"

#define N_ADDR (J1939_MAX_UNICAST_ADDR + 1)

static uint64_t fuzz_u64_le(struct fuzz_in *in) {
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v |= (uint64_t)fuzz_u8(in) << (8 * i);
	return v;
}

static bool allowed(const struct can_j1939 *j, int a) {
	return a == j->address || (j->have_range && a >= j->lo && a <= j->hi);
}

/* What claim_start() does to the state: the address, or Cannot Claim. */
static void claim(struct can_j1939 *j, int addr) {
	if (addr < 0) {
		j->state = CAN_J1939_CANNOT_CLAIM;
		j->cur = J1939_IDLE_ADDR;
	} else {
		j->state = CAN_J1939_CLAIMING;
		j->cur = addr;
	}
}

static void check_held(const struct can_j1939 *j) {
	for (int a = 0; a < N_ADDR; a++) {
		FUZZ_ASSERT(j->held[a] != j->name);
		for (int b = a + 1; j->held[a] && b < N_ADDR; b++)
			FUZZ_ASSERT(j->held[b] != j->held[a]);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	struct fuzz_in in = { data, size };
	struct can_j1939 j = { .claim = true, .fd = -1 };
	uint8_t a, lo, hi;

	j.name = fuzz_u64_le(&in);
	a = fuzz_u8(&in);
	j.address = a <= J1939_MAX_UNICAST_ADDR ? a : -1;
	j.have_range = fuzz_u8(&in) & 1;
	lo = fuzz_u8(&in) % N_ADDR;
	hi = fuzz_u8(&in) % N_ADDR;
	j.lo = lo < hi ? lo : hi;
	j.hi = lo < hi ? hi : lo;
	/* The config refuses a NAME of 0 (the kernel's J1939_NO_NAME), and one without an address or a range. */
	if (j.name == 0 || (j.address < 0 && !j.have_range))
		return 0;
	/* can_j1939_open(): the first address to try, with nothing heard yet. */
	claim(&j, j.address >= 0 ? j.address : j.lo);

	while (in.n > 0) {
		uint8_t kind = fuzz_u8(&in), sa = fuzz_u8(&in), da = fuzz_u8(&in);
		uint8_t msg[16] = { 0 }, len = fuzz_u8(&in) % (sizeof(msg) + 1);
		uint32_t pgn;
		int cur = j.cur, state = j.state, addr = -2;
		uint64_t claimant;
		enum can_j1939_verdict v;

		switch (kind % 4) {
		case 0:
			pgn = J1939_PGN_ADDRESS_CLAIMED;
			break;
		case 1:
			pgn = J1939_PGN_REQUEST;
			break;
		case 2:
			pgn = fuzz_u16(&in);
			break;
		default:
			/* The claim's 250 ms ran out with no contest. */
			if (j.state == CAN_J1939_CLAIMING)
				j.state = CAN_J1939_CLAIMED;
			continue;
		}
		for (uint8_t i = 0; i < len; i++)
			msg[i] = fuzz_u8(&in);
		claimant = 0;
		for (int i = 0; i < 8; i++)
			claimant |= (uint64_t)msg[i] << (8 * i);

		v = can_j1939_decide(&j, pgn, sa, da, msg, len, &addr);
		FUZZ_ASSERT(v == CAN_J1939_NOTHING || v == CAN_J1939_ANSWER || v == CAN_J1939_YIELD);
		/* Deciding never moves the claim itself: the driver does. */
		FUZZ_ASSERT(j.cur == cur && j.state == state);
		check_held(&j);
		if (v == CAN_J1939_ANSWER && pgn == J1939_PGN_ADDRESS_CLAIMED)
			FUZZ_ASSERT(len >= 8 && sa == cur && claimant > j.name);
		if (v == CAN_J1939_ANSWER && pgn == J1939_PGN_REQUEST)
			FUZZ_ASSERT(len >= 3 && (da == J1939_NO_ADDR || da == cur));
		if (v != CAN_J1939_YIELD) {
			FUZZ_ASSERT(addr == -1);
			continue;
		}
		FUZZ_ASSERT(pgn == J1939_PGN_ADDRESS_CLAIMED && len >= 8);
		FUZZ_ASSERT(sa == cur && state != CAN_J1939_CANNOT_CLAIM && claimant < j.name);
		FUZZ_ASSERT(j.held[sa] == claimant);
		if (addr >= 0) {
			FUZZ_ASSERT(addr < N_ADDR && addr != sa && allowed(&j, addr));
			FUZZ_ASSERT(!j.held[addr] || j.held[addr] > j.name);
		}
		claim(&j, addr);
	}
	return 0;
}
