/* placeholder: being written */
#include "fgconfig.h"
