/* The worker's exclusion and idempotency protocol, as a Promela model for
   spin: the agent lease (worker/lease.go), the ledger (internal/ledger),
   execution (handle.go, execute.go), disposal and the last delivery
   (dispose.go) and the max-deliveries advisory (exhausted.go); and the
   call-scoping rule of DESIGN.md #8, modelled before the code follows it.

   Modelled: one command delivered as one or two stream messages ("copies":
   a publisher that did not set Nats-Msg-Id), each delivered up to MAXDEL
   times; a deadline that passes at any moment; up to MAXCRASH worker
   crashes (mid-request, where the gateway may or may not have executed,
   and between storing an outcome and publishing it, wherever one is
   stored: after a request, on the expired path, on the last delivery and
   in the max-deliveries advisory's handler, whose advisory then comes
   back); a crashed worker's
   lease expiring later, and a live worker's when its renewals fail (never
   mid-request: no request outlives the lease's validUntil, so a worker
   that lost it Naks); requests retried within a delivery after no answer;
   the gateway answering released / already gone (200-023) / nothing;
   results de-duplicated by Nats-Msg-Id (the first one published counts).
   Each step on NATS is atomic, as a KV write or a publish is.

   One result message per command (DESIGN.md #9): the ledger's done record
   names the copy (stream message) whose delivery, or advisory, stored it
   (recCopy; Record.Seq in internal/ledger). A delivery or advisory that
   finds the command done publishes the stored result again only if it is
   of that copy (its delivery may have died between storing and
   publishing); one of another copy publishes nothing (worker/handle.go
   replay). A second copy may be published after the results stream's
   de-duplication window, so the model does not count on the de-duplication
   across copies: it flags any publication by a copy other than the one
   that stored the result (strayPub). Publications by the storing copy
   itself (its redeliveries and its advisory, within AckWait times the
   max deliveries) are assumed to fall within the window.

   The agent's calls: the command was stored during call A, the customer's
   call. At any moment A ends (the customer hangs up, or a release took the
   party), and later the customer may call back from the same number: call
   B becomes the agent's last call, possibly before any delivery. The
   gateway releases the number from the agent's last call: a request that
   arrives while the last call has the number as a party releases it from
   that call; with no such party it answers already gone (200-023).

   The call-scoping rule (each delivery, after taking the agent's lease):
   (1) its candidate pin is the call that was the agent's last call when
   the command was stored (A; a call_id command carries it); (2) the ledger
   start writes "started" with that pin; a delivery that finds "started"
   takes it over keeping the pin it found (the first pin wins); a found
   outcome is replayed; (3) before every attempt (the first request, a
   retry within the delivery, the first after a takeover) it checks that
   the pinned call is still the agent's last call and the number one of its
   parties; if not, it sends nothing and ends the command: "accepted"
   (already_released) if a request of it may have reached the gateway (an
   earlier request without an answer, or a found "started" record), else
   "failed" (call_ended), stored over the delivery's own revision like
   every outcome. ASSUMED: the check and the gateway acting on the request
   are one step, except that the customer may still hang up in between
   (the gateway then answers already gone). No check can close the
   gateway's own latency between the check and the release, in which the
   customer could hang up and call back: the model leaves that out.

   Checked: only the lease holder sends, one request at a time, and never
   after the outcome is stored; every command gets a result, published
   only by the copy that stored it (one result message, whether or not the
   de-duplication window passed); the published result is the one the
   ledger ends with; a command the gateway executed is published
   "accepted" or with an outcome_unknown reason; and a release
   executes only on the command's call (A, the pin its ledger record
   holds), never on the call back B.

   `make model` runs it with one and with two copies, and checks that each
   of these earlier versions, which it found wrong, still fails:
     OLD_LAST_DELIVERY  the last delivery stored "failed" over the ledger
                        unconditionally, even over another copy's outcome;
     OLD_EXHAUSTED      the advisory skipped a command whose outcome was
                        stored but never published (its writer died);
     OLD_DONE_PUT       the lease holder stored its outcome with a plain
                        Put, even after losing its lease (renewals failing)
                        to another delivery, which, finding "started",
                        sent again after the outcome was stored;
     OLD_LAST_OWN_REV   a last delivery that had lost its lease stored
                        "failed" over the revision it read, its successor's;
   that the version before the copy rule, which relied on the
   de-duplication across copies, and the opposite mistake fail too:
     OLD_COPY_REPUBLISH any delivery or advisory finding the command done
                        published the stored result again, of whichever
                        copy: the other copy's (its advisory, say, after
                        the first copy's stored and published "failed")
                        is a second result message past the window;
     NO_OWN_REPLAY      none publishes, of its own copy neither: the result
                        of a copy whose delivery died between storing and
                        publishing is lost;
   and that each of these breaks of the call-scoping rule fails too:
     OLD_NO_CALL_CHECK  no check before attempts (the code before #8): a
                        request after A ended and B began, a first one, a
                        retry or one after a takeover, releases B's party;
     OLD_CHECK_ONCE     the check only before a delivery's first request:
                        a retry after no answer, once B began, releases B;
     OLD_PIN_AT_DELIVERY  the candidate pin is the call current when the
                        delivery starts, not the call the command was
                        stored in: a first delivery after A->B pins B and
                        releases it;
     OLD_TAKEOVER_REPIN a takeover pins the call current at its own start
                        instead of keeping the pin it found: after A->B it
                        releases B.
   OLD_EXPIRED (the expired path storing "expired" over a started record
   while the copy that started it held the agent) was wrong before outcomes
   were fenced by revision; with the fence it is consistent but imprecise:
   "expired: outcome_unknown" where the copy in flight would have known
   the outcome. The expired path still waits for that copy.
*/

#define NONE    0
#define STARTED 1
#define ACC     2
#define EXP     3
#define FAIL    4
#define CALL_A  1       /* the customer's call, current when the command was stored */
#define CALL_B  2       /* the customer's call back from the same number */
#define LOST    0       /* the request did not reach the gateway */
#define REL     1       /* the gateway released the party */
#define GONE    2       /* the gateway answered "already gone" (200-023) */
#define MAXDEL  2
#define MAXCRASH 2
#ifdef ONE_COPY
#define COPIES 1
#else
#define COPIES 2
#endif


byte rec = NONE;        /* ledger record state */
byte recRev = 0;        /* ledger revision */
bool recUnk = 0;        /* the stored result's reason says outcome_unknown */
byte holder = 0;        /* agent lease: 0 free, else delivery id (copy) */
bool holderDead = 0;    /* holder crashed: lease expires some time later */
byte mayLose = 0;       /* a live holder past its last request: its lease may expire (renewals failing) */
bool past = 0;          /* the command's deadline has passed */
bool executed = 0;      /* the gateway released the party */
bool inPost = 0;
byte pub = NONE;        /* first published result (de-duplicated) */
bool pubUnknown = 0;
byte done = 0;          /* copies that ended */
byte crashes = 0;       /* crashes so far in a run, at most MAXCRASH */
byte lastCall = CALL_A; /* the agent's last call: the one the gateway releases the number from */
bool partyA = 1;        /* the number is a party of call A */
bool partyB = 0;        /* the number is a party of call B */
byte recPin = 0;        /* the call pinned in the ledger's started record */
byte recCopy = 0;       /* the copy (stream message) whose delivery stored the done record */
bool strayPub = 0;      /* a copy other than the one that stored the result published it */

/* Publishes a result (de-duplicated: the first one counts). Called in a
   Copy: me is the copy publishing; one other than the copy that stored the
   result is a second result message once the de-duplication window passed. */
inline publish(r, unk) {
  atomic {
    if :: me != recCopy -> strayPub = 1 :: else -> skip fi;
    if :: pub == NONE -> pub = r; pubUnknown = unk :: else -> skip fi
  }
}

/* A delivery (or the advisory) of copy me that found the command done
   publishes the stored result again only if its own copy stored it (its
   delivery that stored it may have died before publishing); another copy
   publishes nothing (worker/handle.go replay). */
inline replay(r, unk, rc) {
#ifdef OLD_COPY_REPUBLISH
  publish(r, unk)
#elif defined(NO_OWN_REPLAY)
  skip
#else
  if :: rc == me -> publish(r, unk) :: else -> skip fi
#endif
}

/* The deadline may pass at any time; a dead holder's lease may expire, and
   so may a live one's once it sent its last request (a worker sends
   nothing after its lease's validUntil, so only then). */
active proctype Clock() {
  do
  :: !past -> past = 1
  :: atomic { holder != 0 && holderDead -> holder = 0; holderDead = 0 }
  :: atomic { holder != 0 && mayLose == holder -> holder = 0; mayLose = 0 }
  :: done == COPIES -> break
  od
}

/* The customer: call A ends at any moment (the customer hangs up, or a
   release took the party), and the customer may then call back from the
   same number: call B becomes the agent's last call, with the number a
   party of it. */
active proctype Customer() {
  if
  :: atomic { partyA -> partyA = 0 }   /* hangs up: A ends */
  :: !partyA -> skip                   /* released: A ends */
  :: done == COPIES -> goto out
  fi;
  if
  :: atomic { lastCall = CALL_B; partyB = 1 }   /* calls back */
  :: done == COPIES -> skip
  fi;
out:
  skip
}

proctype Copy(byte me) {
  byte deliveries = 0;
  byte r; byte rv; bool mine; bool maybe; byte outcome; bool unk; byte myRev; bool won;
  bool wrote;            /* this delivery wrote (or took over) the started record, at myRev */
  bool waitElsewhere; bool ru;
  byte rc;               /* the copy that stored the done record read */
  byte pin;              /* the call this delivery is scoped to */
  byte resp;             /* what the gateway did with the request */
  bool gone;             /* the check found the pinned call not the agent's, or the number not its party */
  bool tried;            /* this delivery sent a request */
next:
  deliveries++;
  mine = 0; maybe = 0; waitElsewhere = 0; wrote = 0; tried = 0; pin = 0;
  if
  :: past -> goto expired
  :: else -> skip
  fi;
  /* acquire the lease, or give up when the deadline passes */
  if
  :: atomic { holder == 0 -> holder = me }
  :: past -> goto expired
  fi;
  /* ledger start */
start:
  atomic {
    if
    :: rec == NONE -> rec = STARTED; recRev++; mine = 1; myRev = recRev;
       /* pinned: the call that was the agent's last when the command was
          stored (a call_id command carries it) */
#ifdef OLD_PIN_AT_DELIVERY
       recPin = lastCall;
#else
       recPin = CALL_A;
#endif
       pin = recPin
    :: else -> r = rec; ru = recUnk; rc = recCopy; myRev = recRev; pin = recPin   /* the first pin wins */
    fi
  }
  if
  :: !mine && r != STARTED -> replay(r, ru, rc); goto release  /* replay the stored result */
  :: !mine && r == STARTED -> maybe = 1;
#ifndef OLD_DONE_PUT
     /* take the started record over (a new revision), so that the delivery
        that wrote it, should it still be alive, cannot store its outcome
        over this one's; lost: read again */
     atomic {
       if
       :: recRev == myRev -> recRev++; myRev = recRev; won = 1;
#ifdef OLD_TAKEOVER_REPIN
          recPin = lastCall; pin = recPin;   /* re-pinned to the call current now */
#endif
          skip
       :: else -> won = 0
       fi
     }
     if :: !won -> goto start :: else -> skip fi
#endif
  :: mine -> skip
  fi;
  wrote = 1;
  /* execute: send until released, already gone, or the deadline passes;
     only while the lease is certainly held (validUntil): then it cannot
     expire mid-request. Before every attempt the pinned call is checked to
     be the agent's last call with the number a party of it; the check and
     the gateway acting on the request are one step (assumed: see above). */
attempt:
  mayLose = me;   /* renewals may fail from now on, and between attempts */
  if
  :: past -> outcome = EXP; unk = maybe
  :: atomic { !past && holder != me -> mayLose = 0 } -> goto redeliver   /* lease lost: Nak */
  :: atomic { !past && holder == me -> mayLose = 0;
       if
#ifdef OLD_NO_CALL_CHECK
       :: false -> skip
#else
#ifdef OLD_CHECK_ONCE
       :: !tried && !(lastCall == pin && (pin == CALL_A && partyA || pin == CALL_B && partyB)) -> gone = 1
#else
       :: !(lastCall == pin && (pin == CALL_A && partyA || pin == CALL_B && partyB)) -> gone = 1
#endif
#endif
       :: else -> gone = 0; assert(!inPost); assert(rec == STARTED); inPost = 1; tried = 1;
          if
          :: resp = LOST
          :: skip ->
             if
             :: partyA -> partyA = 0   /* the customer hangs up as it arrives */
             :: skip
             fi;
             /* the gateway releases the number from the agent's last call */
             if
             :: lastCall == CALL_A && partyA -> partyA = 0; executed = 1; resp = REL
             :: lastCall == CALL_B && partyB -> partyB = 0; resp = REL
             :: else -> resp = GONE
             fi;
             /* a release executes only on the command's call: the call it
                was stored in, the pin its ledger record holds */
             assert(resp != REL || (lastCall == CALL_A && recPin == CALL_A))
          fi
       fi }
     if
     :: gone -> gone = 0;   /* nothing sent: ended, already_released or call_ended */
        if :: maybe -> outcome = ACC :: else -> outcome = FAIL fi; unk = 0
     :: else ->
        if
        :: atomic { crashes < MAXCRASH -> crashes++; holderDead = 1; inPost = 0; resp = 0 }
           goto crashedOut   /* dies mid-request; the gateway may have acted on it */
        :: true -> skip
        fi;
        if
        :: resp == REL -> outcome = ACC; unk = 0                            /* released */
        :: resp == GONE -> if :: maybe -> outcome = ACC :: else -> outcome = FAIL fi; unk = 0  /* 200-023 */
        :: true -> maybe = 1; inPost = 0; resp = 0; goto attempt            /* no answer: maybe executed; retry */
        fi;
        resp = 0; inPost = 0
     fi
  fi;
  mayLose = me;
  /* record: ledger done, then the result */
#ifdef OLD_DONE_PUT
  atomic { rec = outcome; recUnk = unk; recCopy = me; recRev++ }   /* unconditional Put */
#else
  /* over the record this delivery started (or found), else Nak: the
     redelivery replays what another delivery stored meanwhile */
  atomic {
    if
    :: recRev == myRev -> rec = outcome; recUnk = unk; recCopy = me; recRev++; won = 1
    :: else -> won = 0
    fi
  }
  if
  :: !won -> atomic { if :: holder == me -> holder = 0 :: else -> skip fi; mayLose = 0 }; goto redeliver
  :: else -> skip
  fi;
#endif
  if
  :: atomic { crashes < MAXCRASH -> crashes++; holderDead = (holder == me); mayLose = 0 } -> goto crashedOut  /* dies before publishing */
  :: true -> skip
  fi;
  publish(outcome, unk);
release:
  atomic { if :: holder == me -> holder = 0 :: else -> skip fi; if :: mayLose == me -> mayLose = 0 :: else -> skip fi }
  goto finish;

expired:
  /* ledger.Decide: done -> Republish (replay), started -> Contended, none -> Store */
  atomic { r = rec; rv = recRev; ru = recUnk; rc = recCopy }
  if
  :: r == ACC || r == EXP || r == FAIL -> replay(r, ru, rc); goto finish
#ifndef OLD_EXPIRED
  :: r == STARTED && holder != 0 -> waitElsewhere = 1
#endif
  :: else ->
     ru = (r == STARTED);
     atomic {
       if
       :: recRev == rv -> rec = EXP; recUnk = ru; recCopy = me; recRev++; won = 1
       :: else -> won = 0
       fi
     }
     if
     :: !won -> goto redeliver   /* CAS lost: Nak, the redelivery replays */
     :: atomic { won && crashes < MAXCRASH -> crashes++ } -> goto crashedOut  /* dies before publishing */
     :: won -> publish(EXP, ru); goto finish
     fi
  fi;
redeliver:
  if
  :: deliveries < MAXDEL -> goto next
  :: else ->
     if
     :: waitElsewhere -> goto exhausted   /* no conversion: the advisory waits */
     :: else ->
        /* last delivery: a retry becomes failed max_deliveries, unless the
           ledger is done (replay it) or a copy is in flight (defer);
           ledger.Decide, as on the expired path and the advisory's */
#ifdef OLD_LAST_DELIVERY
        atomic { rec = FAIL; recUnk = 1; recCopy = me; recRev++ }; publish(FAIL, 1); goto finish;
#endif
        atomic { r = rec; rv = recRev; ru = recUnk; rc = recCopy }
#ifndef OLD_LAST_OWN_REV
        if :: r == STARTED && wrote -> rv = myRev :: else -> skip fi   /* its own record, not a successor's */
#endif
        if
        :: r == ACC || r == EXP || r == FAIL -> replay(r, ru, rc); goto finish
        :: r == STARTED && !wrote && holder != 0 -> goto exhausted
        :: else ->
           atomic {
             if
             :: recRev == rv -> rec = FAIL; recUnk = 1; recCopy = me; recRev++; won = 1
             :: else -> won = 0
             fi
           }
           if
           :: !won -> goto exhausted   /* CAS lost: Nak, the advisory decides */
           :: atomic { won && crashes < MAXCRASH -> crashes++ } -> goto crashedOut  /* dies before publishing */
           :: won -> publish(FAIL, 1); goto finish
           fi
        fi
     fi
  fi;
exhausted:
  /* the max-deliveries advisory: retried until the ledger is done or the agent free (ledger.Decide) */
  do
#ifdef OLD_EXHAUSTED
  :: atomic { rec == ACC || rec == EXP || rec == FAIL } -> break
#else
  :: atomic { rec == ACC || rec == EXP || rec == FAIL -> replay(rec, recUnk, recCopy) } -> break  /* replayed: its writer may have died before publishing */
#endif
  :: atomic { rec == STARTED && holder == 0 -> rec = FAIL; recUnk = 1; recCopy = me; recRev++ } -> goto advStored
  :: atomic { rec == NONE -> rec = FAIL; recUnk = 1; recCopy = me; recRev++ } -> goto advStored
  od;
  goto finish;
advStored:
  if
  :: atomic { crashes < MAXCRASH -> crashes++ } -> goto exhausted   /* its handler dies before publishing: the advisory comes back */
  :: publish(FAIL, 1)
  fi;
  goto finish;
crashedOut:
  /* the message comes back after AckWait, as the same copy */
  if
  :: deliveries < MAXDEL -> goto next
  :: else -> goto exhausted
  fi;
finish:
  done++
}

init {
  run Copy(1);
#ifndef ONE_COPY
  run Copy(2);
#endif
  (done == COPIES);
  /* the published result agrees with the ledger, and says "accepted" or
     "outcome unknown" whenever the gateway released the party */
  assert(pub != NONE);   /* every command has a result */
  assert(pub == rec);
  assert(!executed || pub == ACC || pubUnknown);
  /* one result message, whether or not the de-duplication window passed:
     only the copy that stored the result published it */
  assert(!strayPub)
}
