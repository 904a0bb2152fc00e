package main

import (
	"github.com/gorlhf/gorlhf/internal/cfgflag"
	"github.com/gorlhf/gorlhf/internal/trainer/ppo"
)

// registerPPOAsync binds the --train.async_* flags (asynchronous training).
func registerPPOAsync(b *cfgflag.Binder, a *ppo.AsyncConfig) {
	b.Var(&a.Enable, "generate the next batches while the current one trains (batch k from the policy of iteration k − async_queue_size; same results run to run)")
	b.Var(&a.QueueSize, "batches generation runs ahead of training (the policy lag, in iterations)")
	b.Var(&a.MaxStaleness, "regenerate, with the current policy, a prompt's samples that lag the published weights by more than this many versions (0 = async_queue_size)")
}
