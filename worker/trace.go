package worker

import (
	"context"

	"github.com/callcontrol/callcontrol/events"
	"github.com/callcontrol/callcontrol/gateway"
	"github.com/callcontrol/callcontrol/tracing"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// Span names and the attribute that only spans have (the others use the
// log keys). Attributes never hold the number, the GUID or any gateway or
// reason text (which may echo the number).
const (
	spanDisconnect = "disconnect"
	spanRequest    = "gateway.disconnect"
	keyClass       = "class"
)

// startSpan starts the span of one delivery, a child of the trace context
// the command carries in its headers (a new trace when it carries none, or
// a malformed one).
func (w *Worker) startSpan(ctx context.Context, msg jetstream.Msg) (context.Context, trace.Span) {
	ctx = tracing.Extract(ctx, msg.Headers())
	return w.tracer.Start(ctx, spanDisconnect, trace.WithSpanKind(trace.SpanKindConsumer))
}

// startRequest starts the span of one gateway request; its context goes
// into the request's traceparent header.
func (w *Worker) startRequest(ctx context.Context, attempt int) (context.Context, trace.Span) {
	return w.tracer.Start(ctx, spanRequest, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.Int(keyAttempt, attempt)))
}

// endRequest ends a request span with the answer's class and retcode.
func endRequest(span trace.Span, err error) {
	class := gateway.Classify(err)
	span.SetAttributes(attribute.String(keyClass, class.String()), attribute.String(keyRetcode, gateway.RetCodeOf(err)))
	if class != gateway.ClassSuccess && class != gateway.ClassAlreadyDone {
		span.SetStatus(codes.Error, class.String())
	}
	span.End()
}

// traceContext returns ctx carrying the job's delivery span, so that what
// dispose publishes carries its trace context.
func (j *job) traceContext(ctx context.Context) context.Context {
	if j.span == nil {
		return ctx
	}
	return trace.ContextWithSpan(ctx, j.span)
}

// traceOutcome records the disposition on the delivery span, with the same
// facts as the log line but the number.
func traceOutcome(j *job, out outcome, ackErr error) {
	if j.span == nil || !j.span.IsRecording() {
		return
	}
	id, outcomeName, retcode := j.cmd.CommandID, "retry", ""
	switch {
	case out.res != nil:
		id, outcomeName, retcode = out.res.CommandID, string(out.res.Status), out.res.RetCode
	case out.shutdown:
		outcomeName = "shutdown"
	}
	j.span.SetAttributes(attribute.String(keyCommandID, id), attribute.Int(keyAgentID, j.cmd.AgentID),
		attribute.Int(keyAttempt, j.attempts), attribute.String(keyOutcome, outcomeName), attribute.String(keyRetcode, retcode))
	if j.meta != nil {
		j.span.SetAttributes(attribute.Int64(keyDelivery, int64(j.meta.NumDelivered)))
	}
	switch {
	case ackErr != nil:
		j.span.SetStatus(codes.Error, "acknowledgement failed")
	case out.res != nil && out.res.Status != events.StatusAccepted:
		j.span.SetStatus(codes.Error, outcomeName)
	}
}
