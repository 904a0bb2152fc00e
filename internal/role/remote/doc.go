// Package remote serves RL roles over the network and reaches them from
// the driver through clients that implement the same role interfaces.
package remote
