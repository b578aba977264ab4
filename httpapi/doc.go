// Package httpapi is lambda-endpoint's REST API: the routes of API.md on
// httprouter, behind the argon2 Authorization check.
//
// Handlers only decode, validate, call the template store or the trace
// runtime, and encode the answer. Every error answer is JSON
// {"error": "..."} except where API.md prescribes a text/plain body.
package httpapi
