package remote

import (
	"context"
	"errors"
	"fmt"
)

// Error is a call that failed, as the driver sees it. Its text is
// "remote: <role> <Method> on <addr>: <cause>", where the cause is the
// worker's error text unchanged when the role failed there.
type Error struct {
	Role   Role   // "" for the handshake (Method Hello)
	Method string // the role interface's method name
	Addr   string // the worker's address
	Code   Code
	// Err is the cause. A worker's context error unwraps to
	// context.Canceled or context.DeadlineExceeded, as a local one does.
	Err error
}

func (e *Error) Error() string {
	who := e.Method
	if e.Role != "" {
		who = string(e.Role) + " " + e.Method
	}
	return fmt.Sprintf("remote: %s on %s: %v", who, e.Addr, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// CodeOf returns the code of a remote call's error, "" when err is not
// one.
func CodeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// workerError is an error as the worker wrote it: its text, and the
// context error it stands for, if any.
type workerError struct {
	msg   string
	cause error // context.Canceled, context.DeadlineExceeded or nil
}

func (e *workerError) Error() string { return e.msg }
func (e *workerError) Unwrap() error { return e.cause }

// newWorkerError rebuilds a worker's error from its reply.
func newWorkerError(b errorBody) error {
	e := &workerError{msg: b.Message}
	switch b.Code {
	case CodeCanceled:
		e.cause = context.Canceled
	case CodeDeadlineExceeded:
		e.cause = context.DeadlineExceeded
	}
	return e
}

// statusError is a server-side failure with its code.
type statusError struct {
	code Code
	err  error
}

func (e *statusError) Error() string { return e.err.Error() }
func (e *statusError) Unwrap() error { return e.err }

func failf(code Code, format string, args ...any) error {
	return &statusError{code: code, err: fmt.Errorf(format, args...)}
}

// codeOf classifies an error a handler returned.
func codeOf(err error) Code {
	var se *statusError
	switch {
	case errors.As(err, &se):
		return se.code
	case errors.Is(err, context.Canceled):
		return CodeCanceled
	case errors.Is(err, context.DeadlineExceeded):
		return CodeDeadlineExceeded
	}
	return CodeUnknown
}
