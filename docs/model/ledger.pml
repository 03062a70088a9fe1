/* The worker's exclusion and idempotency protocol, as a Promela model for
   spin: the agent lease (worker/lease.go), the ledger (worker/ledger.go),
   execution (handle.go, execute.go), disposal and the last delivery
   (dispose.go) and the max-deliveries advisory (exhausted.go).

   Modelled: one command delivered as one or two stream messages ("copies":
   a publisher that did not set Nats-Msg-Id), each delivered up to MAXDEL
   times; a deadline that passes at any moment; up to MAXCRASH worker
   crashes (mid-request, where the gateway may or may not have executed,
   and between storing the outcome and publishing it); a crashed worker's
   lease expiring later, and a live worker's when its renewals fail (never
   mid-request: no request outlives the lease's validUntil, so a worker
   that lost it Naks); the gateway answering released / already gone
   (200-023) / nothing; results de-duplicated by Nats-Msg-Id (the first one
   published counts). Each step on NATS is atomic, as a KV write or a
   publish is.

   Checked: only the lease holder sends, one request at a time, and never
   after the outcome is stored; every command gets a result; the published
   result is the one the ledger ends with; and a command the gateway
   executed is published "accepted" or with an outcome_unknown reason.

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
                        "failed" over the revision it read, its successor's.
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

inline publish(r, unk) { atomic { if :: pub == NONE -> pub = r; pubUnknown = unk :: else -> skip fi } }

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

proctype Copy(byte me) {
  byte deliveries = 0;
  byte r; byte rv; bool mine; bool maybe; byte outcome; bool unk; byte myRev; bool won;
  bool wrote;            /* this delivery wrote (or took over) the started record, at myRev */
  bool waitElsewhere; bool ru;
next:
  deliveries++;
  mine = 0; maybe = 0; waitElsewhere = 0; wrote = 0;
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
    :: rec == NONE -> rec = STARTED; recRev++; mine = 1; myRev = recRev
    :: else -> r = rec; ru = recUnk; myRev = recRev
    fi
  }
  if
  :: !mine && r != STARTED -> publish(r, ru); goto release  /* replay the stored result */
  :: !mine && r == STARTED -> maybe = 1;
#ifndef OLD_DONE_PUT
     /* take the started record over (a new revision), so that the delivery
        that wrote it, should it still be alive, cannot store its outcome
        over this one's; lost: read again */
     atomic {
       if
       :: recRev == myRev -> recRev++; myRev = recRev; won = 1
       :: else -> won = 0
       fi
     }
     if :: !won -> goto start :: else -> skip fi
#endif
  :: mine -> skip
  fi;
  wrote = 1;
  mayLose = me;   /* renewals may fail from now on */
  /* execute: one POST unless the deadline has passed, and only while the
     lease is certainly held (validUntil): then it cannot expire mid-request */
  if
  :: past -> outcome = EXP; unk = maybe
  :: atomic { !past && holder != me -> mayLose = 0 } -> goto redeliver   /* lease lost: Nak */
  :: atomic { !past && holder == me -> assert(!inPost); assert(rec == STARTED); inPost = 1; mayLose = 0 }
     if
     :: atomic { crashes < MAXCRASH -> crashes++; holderDead = 1; inPost = 0;
          if :: executed = 1 :: skip fi }      /* dies mid-POST; the gateway may have executed it */
          goto crashedOut
     :: true -> skip
     fi;
     if
     :: !executed -> executed = 1; outcome = ACC; unk = 0      /* released */
     :: executed -> if :: maybe -> outcome = ACC :: else -> outcome = FAIL fi; unk = 0  /* 200-023 */
     :: true -> outcome = EXP; unk = 1                          /* no answer: maybe executed */
     fi;
     inPost = 0
  fi;
  mayLose = me;
  /* record: ledger done, then the result */
#ifdef OLD_DONE_PUT
  atomic { rec = outcome; recUnk = unk; recRev++ }   /* unconditional Put */
#else
  /* over the record this delivery started (or found), else Nak: the
     redelivery replays what another delivery stored meanwhile */
  atomic {
    if
    :: recRev == myRev -> rec = outcome; recUnk = unk; recRev++; won = 1
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
  atomic { r = rec; rv = recRev; ru = recUnk }
  if
  :: r == ACC || r == EXP || r == FAIL -> publish(r, ru); goto finish
#ifndef OLD_EXPIRED
  :: r == STARTED && holder != 0 -> waitElsewhere = 1
#endif
  :: else ->
     atomic {
       if
       :: recRev == rv -> rec = EXP; recUnk = (r == STARTED); recRev++; publish(EXP, r == STARTED)
       :: else -> skip   /* CAS lost: Nak, the redelivery replays */
       fi
     }
     if :: rec != EXP || pub == NONE -> goto redeliver :: else -> goto finish fi
  fi;
redeliver:
  if
  :: deliveries < MAXDEL -> goto next
  :: else ->
     if
     :: waitElsewhere -> goto exhausted   /* no conversion: the advisory waits */
     :: else ->
        /* last delivery: a retry becomes failed max_deliveries, unless the
           ledger is done (replay it) or a copy is in flight (defer) */
#ifdef OLD_LAST_DELIVERY
        atomic { rec = FAIL; recUnk = 1; recRev++ }; publish(FAIL, 1); goto finish;
#endif
        atomic { r = rec; rv = recRev; ru = recUnk }
#ifndef OLD_LAST_OWN_REV
        if :: r == STARTED && wrote -> rv = myRev :: else -> skip fi   /* its own record, not a successor's */
#endif
        if
        :: r == ACC || r == EXP || r == FAIL -> publish(r, ru); goto finish
        :: r == STARTED && !wrote && holder != 0 -> goto exhausted
        :: else ->
           atomic {
             if
             :: recRev == rv -> rec = FAIL; recUnk = 1; recRev++; publish(FAIL, 1)
             :: else -> skip
             fi
           }
           if :: rec == FAIL && pub == FAIL -> goto finish :: else -> goto exhausted fi
        fi
     fi
  fi;
exhausted:
  /* the max-deliveries advisory: retried until the ledger is done or the agent free */
  do
#ifdef OLD_EXHAUSTED
  :: atomic { rec == ACC || rec == EXP || rec == FAIL } -> break
#else
  :: atomic { rec == ACC || rec == EXP || rec == FAIL -> publish(rec, recUnk) } -> break  /* replayed: its writer may have died before publishing */
#endif
  :: atomic { rec == STARTED && holder == 0 -> rec = FAIL; recUnk = 1; recRev++; publish(FAIL, 1) } -> break
  :: atomic { rec == NONE -> rec = FAIL; recUnk = 1; recRev++; publish(FAIL, 1) } -> break
  od;
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
  assert(!executed || pub == ACC || pubUnknown)
}
