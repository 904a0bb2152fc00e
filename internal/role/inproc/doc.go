// Package inproc implements the role interfaces in this process: an actor and
// a critic that train their own copies of a model, a reference and a
// reward that only read theirs, and a rollout over the generate engine.
//
// The driver cannot tell them from remote roles: every call takes and
// returns the role messages by value, and no role hands out a pointer to
// its weights (Actor.Weights returns copies). Sharing happens only where
// the constructor is told to: NewReference may be given the loaded base
// model as it is, because NewActor is given a Clone of it to train.
//
// The model roles run a padded [B, T] forward pass over prompt+response
// sequences and read, for response token j of sequence i, the prediction
// made at position P_i + j − 1 (the state just before the token): its
// log-prob under the LM head, or the critic's value there.
//
// The actor and the critic step through a train.Optimizer: AdamW in this
// process, or, built with a collective.Comm (NewActorRank, NewCriticRank,
// Want.ActorComm and CriticComm), one rank of a data-parallel group whose
// training state a zero.Engine shards by Spec.ZeroStage. A group's ranks
// are driven together by package role/group.
package inproc
