/* Intrusive doubly linked lists: the elements carry their own `prev` and
 * `next` pointers (any struct with those two fields), the owner keeps a
 * head pointer and, for a FIFO queue, a tail pointer. Unlinking is O(1)
 * and needs no search; nothing is allocated. Used by lib/ and the proxy
 * (proxy/client.c's connection list still links by hand).
 *
 * The macros evaluate their arguments more than once: pass plain lvalues
 * (a variable or a field), never an expression with side effects. An
 * unlinked element has prev == next == NULL. */
#ifndef ZW_LIST_H
#define ZW_LIST_H

#include <stddef.h>

/* Inserts n at the front of the list starting at head. */
#define ZW_LIST_PUSH(head, n)               \
	do {                                \
		(n)->prev = NULL;           \
		(n)->next = (head);         \
		if (head)                   \
			(head)->prev = (n); \
		(head) = (n);               \
	} while (0)

/* Removes n (which must be on the list) from the list starting at head. */
#define ZW_LIST_UNLINK(head, n)                      \
	do {                                         \
		if ((n)->prev)                       \
			(n)->prev->next = (n)->next; \
		else                                 \
			(head) = (n)->next;          \
		if ((n)->next)                       \
			(n)->next->prev = (n)->prev; \
		(n)->prev = (n)->next = NULL;        \
	} while (0)

/* Appends n at the back of the queue head..tail. */
#define ZW_QUEUE_APPEND(head, tail, n)      \
	do {                                \
		(n)->next = NULL;           \
		(n)->prev = (tail);         \
		if (tail)                   \
			(tail)->next = (n); \
		else                        \
			(head) = (n);       \
		(tail) = (n);               \
	} while (0)

/* Removes n (which must be queued) from the queue head..tail. */
#define ZW_QUEUE_UNLINK(head, tail, n)      \
	do {                                \
		if (!(n)->next)             \
			(tail) = (n)->prev; \
		ZW_LIST_UNLINK(head, n);    \
	} while (0)

#endif
